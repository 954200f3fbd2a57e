"""Snapshot planning: XML in and out, ordering, retention, trees, reverts."""

import pytest

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _snapshot as N
from ansible_collections.lifecycle.libvirt.plugins.module_utils import _states as S
from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed, version_text

RUNNING_XML = """<domainsnapshot><name>cp</name><description>before</description><state>running</state>
<parent><name>base</name></parent><creationTime>1795947197</creationTime><memory snapshot='internal'/>
<disks><disk name='vda' snapshot='internal'/></disks><domain type='qemu'><name>web</name></domain></domainsnapshot>"""

EXTERNAL_XML = """<domainsnapshot><name>ext</name><state>disk-snapshot</state><creationTime>5</creationTime>
<memory snapshot='no'/><disks><disk name='vda' snapshot='external' type='file'><driver type='qcow2'/>
<source file='/img/ov.qcow2'/></disk></disks></domainsnapshot>"""


def snap(name, parent=None, created=1, state=S.DEFINED, memory=False, external=False, current=False):
    return dict(name=name, parent=parent, creation_time=created, state=state, memory=memory,
                disk_only=False, external=external, disks=[], description=None, current=current)


def test_summary_of_a_snapshot_with_memory():
    summary = N.summarize(RUNNING_XML, current=1)
    assert summary == dict(name='cp', parent='base', description='before', creation_time=1795947197,
                           state=S.RUNNING, memory=True, disk_only=False, external=False,
                           disks=[dict(target='vda', snapshot='internal', file=None)], current=True)


def test_summary_of_an_external_disk_only_snapshot():
    summary = N.summarize(EXTERNAL_XML)
    assert (summary['state'], summary['memory'], summary['disk_only'], summary['external']) == (
        N.DISK_SNAPSHOT, False, True, True)
    assert summary['disks'] == [dict(target='vda', snapshot='external', file='/img/ov.qcow2')]
    assert summary['parent'] is None and summary['current'] is False


def test_summary_of_a_stopped_domains_disk_only_snapshot():
    # libvirt records it as shutoff, without memory, with external disks.
    stopped = EXTERNAL_XML.replace('disk-snapshot', 'shutoff')
    assert stopped != EXTERNAL_XML
    summary = N.summarize(stopped)
    assert (summary['state'], summary['memory'], summary['disk_only']) == (S.DEFINED, False, True)


def test_summary_refuses_entities():
    with pytest.raises(_xml.XMLError, match='DOCTYPE'):
        N.summarize('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><domainsnapshot/>')


def test_snapshot_xml_for_internal_and_external():
    assert _xml.to_text(N.snapshot_xml('a', 'text')) == (
        '<domainsnapshot>\n  <name>a</name>\n  <description>text</description>\n</domainsnapshot>\n')
    root = N.snapshot_xml('b', disks=[('vda', '/o/a.qcow2'), ('vdb', None)])
    disks = root.findall('disks/disk')
    assert [(d.get('name'), d.get('snapshot')) for d in disks] == [('vda', 'external'), ('vdb', 'external')]
    assert disks[0].find('source').get('file') == '/o/a.qcow2' and disks[1].find('source') is None
    assert root.find('description') is None


def test_names_from_unix_time():
    assert N.generated_name(now=1700000000.7) == '1700000000'
    assert N.generated_name('nightly-', now=5) == 'nightly-5'


def test_order_by_time_then_parent_before_child():
    same_second = [snap('c', 'b', 7), snap('a', None, 7), snap('b', 'a', 7), snap('old', None, 3)]
    assert [s['name'] for s in N.oldest_first(same_second)] == ['old', 'a', 'b', 'c']


def test_retention_keeps_the_newest_with_or_without_prefix():
    snapshots = [snap('n-1', None, 1), snap('x', 'n-1', 2), snap('n-2', 'x', 3), snap('n-3', 'n-2', 4)]
    assert N.retention_victims(snapshots, 2) == ['n-1', 'x']
    assert N.retention_victims(snapshots, 2, 'n-') == ['n-1']
    assert N.retention_victims(snapshots, 0, 'n-') == ['n-1', 'n-2', 'n-3']
    assert N.retention_victims(snapshots, 9) == []


def test_tree_and_descendants():
    snapshots = [snap('base', None, 1), snap('a1', 'base', 2), snap('a2', 'a1', 3),
                 snap('b1', 'base', 4, current=True), snap('other', None, 5)]
    assert N.descendants(snapshots, 'base') == ['a1', 'a2', 'b1']
    assert N.descendants(snapshots, 'a2') == []
    assert N.tree(snapshots) == [
        dict(name='base', current=False, children=[
            dict(name='a1', current=False, children=[dict(name='a2', current=False, children=[])]),
            dict(name='b1', current=True, children=[])]),
        dict(name='other', current=False, children=[])]


@pytest.mark.parametrize('state,memory,wanted,steps,ends', [
    (S.RUNNING, True, None, [N.REVERT], S.RUNNING),
    (S.RUNNING, True, S.RUNNING, [N.REVERT], S.RUNNING),
    (S.RUNNING, True, S.PAUSED, [N.REVERT_PAUSED], S.PAUSED),
    (S.RUNNING, True, S.DEFINED, [N.REVERT_PAUSED, N.STOP], S.DEFINED),
    (S.PAUSED, True, None, [N.REVERT], S.PAUSED),
    (S.PAUSED, True, S.RUNNING, [N.REVERT_RUNNING], S.RUNNING),
    (S.DEFINED, False, None, [N.REVERT], S.DEFINED),
    (S.DEFINED, False, S.RUNNING, [N.REVERT_RUNNING], S.RUNNING),
    (S.DEFINED, False, S.PAUSED, [N.REVERT_PAUSED], S.PAUSED),
])
def test_revert_steps(state, memory, wanted, steps, ends):
    assert N.revert_steps(snap('s', state=state, memory=memory), wanted) == (steps, ends)


@pytest.mark.parametrize('domain_state,disk_only,expected', [
    (S.RUNNING, False, (S.RUNNING, True)),
    (S.PAUSED, False, (S.PAUSED, True)),
    (S.DEFINED, False, (S.DEFINED, False)),
    (S.RUNNING, True, (N.DISK_SNAPSHOT, False)),
    (S.DEFINED, True, (S.DEFINED, False)),
])
def test_predicted_kind(domain_state, disk_only, expected):
    assert N.predicted_kind(domain_state, disk_only) == expected


AGENT = ("<domain><devices><channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'%s/>"
         "</channel><disk><target dev='vda'/></disk><disk><target dev='sda'/></disk></devices></domain>")


def test_guest_agent_detection():
    assert N.agent_connected(AGENT % " state='connected'") == (True, None)
    connected, why = N.agent_connected(AGENT % " state='disconnected'")
    assert not connected and 'not connected' in why
    connected, why = N.agent_connected('<domain><devices/></domain>')
    assert not connected and 'no org.qemu.guest_agent.0 channel' in why
    assert N.disk_targets(AGENT % '') == ['vda', 'sda']


def test_describe_text_is_readable():
    text = N.describe_text(N.summarize(EXTERNAL_XML), 'web')
    assert text == ('domain: web\nsnapshot: ext\nkind: external, disk-only\ndomain state: disk-snapshot\n'
                    'disk vda: overlay /img/ov.qcow2\n')
    assert 'kind: internal, disks and memory' in N.describe_text(N.summarize(RUNNING_XML), 'web')


def test_version_text():
    assert version_text(9000000) == '9.0.0' and version_text(9007001) == '9.7.1'


def params(**given):
    values = dict((key, None) for key in N.SNAPSHOT_ARGUMENT_SPEC)
    values.update(domain='web', state='present', disk_only=False, quiesce=False, atomic=False, children='keep')
    values.update(given)
    return values


@pytest.mark.parametrize('given,message', [
    (dict(state='reverted'), 'needs the name'),
    (dict(disks=[dict(target='vda', file=None)]), 'needs disk_only=true'),
    (dict(disk_only=True, disks=[dict(target='vda', file=None), dict(target='vda', file=None)]), 'more than once'),
    (dict(disk_only=True, disks=[dict(target='vda', file='rel.qcow2')]), 'absolute path'),
    (dict(quiesce=True), 'quiesce needs disk_only=true'),
    (dict(state='reverted', name='a', keep=1), 'not with state=reverted'),
    (dict(state='absent', name='a', keep=1), 'either name'),
    (dict(state='absent', keep=-1), 'keep must be 0 or more'),
    (dict(keep=0), 'keep must be 1 or more'),
    (dict(state='absent'), 'needs name'),
    (dict(name='a', name_prefix='n-'), 'name_prefix is used with keep'),
    (dict(name='../../etc/x', disk_only=True), 'must not be empty or contain'),
    (dict(name_prefix='a/', keep=2), 'must not be empty or contain'),
])
def test_spec_refuses_bad_combinations(given, message):
    with pytest.raises(OperationFailed, match=message) as caught:
        N.SnapshotSpec(params(**given))
    assert str(caught.value).startswith('Failed to ')


def test_spec_accepts_retention_and_prefix():
    spec = N.SnapshotSpec(params(name_prefix='n-', keep=3))
    assert spec.what == 'create snapshot of domain web'
    assert N.SnapshotSpec(params(state='absent', keep=0)).what == 'delete snapshots of domain web'


DISKS_XML = """<domain><devices>
<disk type='file' device='disk'><source file='/img/root.qcow2'/><target dev='vda'/></disk>
<disk type='file' device='cdrom'><source file='/img/cd.iso'/><target dev='sda'/><readonly/></disk>
<disk type='file' device='disk'><source file='/img/ro.qcow2'/><target dev='vdb'/><readonly/></disk>
<disk type='file' device='disk' snapshot='no'><source file='/img/skip.qcow2'/><target dev='vdc'/></disk>
<disk type='network' device='disk'><target dev='vdd'/></disk>
</devices></domain>"""


def test_snapshot_disks_are_the_writable_ones():
    assert N.snapshot_disks(DISKS_XML) == [('vda', '/img/root.qcow2'), ('vdd', None)]
    assert N.snapshot_disks('<domain><devices/></domain>') == []


@pytest.mark.parametrize('image, name, overlay', [
    ('/img/web.qcow2', 'nightly', '/img/web.nightly'),
    ('/img/web', 'n1', '/img/web.n1'),
    ('/img/web.data.raw', 'x', '/img/web.data.x'),
])
def test_default_overlay_replaces_the_suffix(image, name, overlay):
    assert N.default_overlay(image, name) == overlay


def test_overlay_refusal_by_what_is_there(tmp_path):
    existing = tmp_path / 'existing'
    existing.write_text('x')
    link = tmp_path / 'link'
    link.symlink_to(tmp_path / 'nowhere')
    assert N.overlay_refusal(str(tmp_path / 'new.qcow2')) is None
    assert 'already exists' in N.overlay_refusal(str(existing))
    assert 'symbolic link' in N.overlay_refusal(str(link))
    assert 'device node' in N.overlay_refusal('/dev/null')
    assert 'directory of' in N.overlay_refusal(str(tmp_path / 'missing' / 'x.qcow2'))


@pytest.mark.parametrize('name', ['', 'a/b', '../x', '..', 'a\0b'])
def test_invalid_names(name):
    assert 'must not be empty or contain' in N.invalid_name(name)


@pytest.mark.parametrize('name', [None, 'nightly-1', 'a.b', 'true'])
def test_valid_names(name):
    assert N.invalid_name(name) is None


def test_effective_parent_skips_deleted_ancestors():
    by_name = dict((s['name'], s) for s in [snap('a'), snap('b', 'a'), snap('c', 'b')])
    assert N.effective_parent(by_name['c'], by_name, []) == 'b'
    assert N.effective_parent(by_name['c'], by_name, ['b']) == 'a'
    assert N.effective_parent(by_name['c'], by_name, ['a', 'b']) is None


# The planners: pure functions of the declaration and what was observed.

LIVE_XML = """<domain><devices>
<disk type='file' device='disk'><source file='/img/web.qcow2'/><target dev='vda'/></disk>
<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0' state='disconnected'/></channel>
</devices></domain>"""


def observed(snapshots=(), state=S.RUNNING, version=9000000, now=1700000000.5):
    return N.Observed(N.oldest_first(list(snapshots)), state, LIVE_XML, version, False, now)


def planned(**given):
    spec = N.SnapshotSpec(params(**given))
    return lambda seen: N.plan(spec, seen)


def test_a_new_snapshot_of_a_running_domain_is_one_create_step_with_memory():
    result = planned(name='cp', description='before')(observed([snap('base', current=True)]))
    (step,) = result.steps
    assert (step.action, step.snapshot, step.flags) == (N.CREATE, 'cp', 0)
    assert '<name>cp</name>' in step.xml and '<description>before</description>' in step.xml
    assert (result.snapshot['parent'], result.snapshot['state'], result.snapshot['memory']) == ('base', S.RUNNING, True)
    (entry,) = result.diff
    assert entry['before'] == '' and 'snapshot: cp\n' in entry['after'] and entry['before_header'] == 'snapshot cp of web'
    assert result.deleted == () and result.facts == {} and result.state is None


def test_an_unnamed_snapshot_is_named_from_the_observed_time():
    result = planned(name_prefix='n-', keep=5)(observed())
    assert result.steps[0].snapshot == 'n-1700000000'


def test_a_snapshot_that_exists_plans_nothing():
    base = snap('base', current=True)
    result = planned(name='base')(observed([base]))
    assert result.steps == () and result.diff == () and result.snapshot is base


def test_a_disk_only_quiesced_snapshot_carries_its_flags_and_needs_the_agent():
    with pytest.raises(OperationFailed, match='quiesce needs the QEMU guest agent, and the guest agent is not '
                                              'connected'):
        planned(name='q', disk_only=True, quiesce=True)(observed())
    with pytest.raises(OperationFailed, match='quiesce needs a running domain .* it is defined'):
        planned(name='q', disk_only=True, quiesce=True)(observed(state=S.DEFINED))
    step = planned(name='d', disk_only=True, atomic=True)(observed()).steps[0]
    assert step.flags == (N.libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | N.libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC)


def test_an_unknown_disk_target_is_refused_before_anything_changes():
    with pytest.raises(OperationFailed, match='vdz is not a disk of the domain \\(its disks: vda\\)'):
        planned(name='d', disk_only=True, disks=[dict(target='vdz', file=None)])(observed())


def test_retention_after_a_create_deletes_the_oldest_of_the_prefix_and_never_the_new_one():
    snapshots = [snap('n-1', created=1), snap('other', created=2), snap('n-2', 'n-1', created=3, current=True)]
    result = planned(name='n-3', name_prefix='n-', keep=2)(observed(snapshots))
    assert [(s.action, s.snapshot) for s in result.steps] == [(N.CREATE, 'n-3'), (N.DELETE, 'n-1')]
    assert result.deleted == ('n-1',) and result.snapshot['name'] == 'n-3'
    assert [e['before_header'] for e in result.diff] == ['snapshot n-3 of web', 'snapshot n-1 of web']
    assert result.diff[1]['after'] == '' and 'snapshot: n-1\n' in result.diff[1]['before']


def test_deleting_with_children_lists_every_descendant():
    snapshots = [snap('base'), snap('a', 'base', created=2), snap('b', 'a', created=3)]
    result = planned(state='absent', name='a', children='delete')(observed(snapshots))
    (step,) = result.steps
    assert (step.action, step.flags) == (N.DELETE_WITH_CHILDREN, N.libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN)
    assert result.deleted == ('a', 'b') and result.snapshot['name'] == 'a'
    assert planned(state='absent', name='gone')(observed(snapshots)) == N._plan()


def test_external_snapshots_are_deleted_only_where_libvirt_can():
    chain = [snap('ext1', external=True), snap('ext2', 'ext1', created=2, external=True)]
    with pytest.raises(OperationFailed, match='libvirt 8.10.0 cannot delete external snapshots \\(libvirt 9.0.0'):
        planned(state='absent', name='ext2')(observed(chain, version=8010000))
    mixed = [snap('int'), snap('ext', 'int', created=2, external=True)]
    with pytest.raises(OperationFailed, match='whose parent int is internal'):
        planned(state='absent', name='ext')(observed(mixed))
    # Retention deletes the internal parent first, so the external one has none left.
    result = planned(state='absent', keep=0)(observed(mixed))
    assert [s.snapshot for s in result.steps] == ['int', 'ext'] and result.deleted == ('int', 'ext')


def test_a_revert_plans_its_steps_diff_and_what_it_discards():
    snapshots = [snap('cp', state=S.RUNNING, memory=True), snap('later', 'cp', created=2, current=True)]
    result = planned(state='reverted', name='cp', revert_state='defined')(observed(snapshots))
    assert [(s.action, s.flags) for s in result.steps] == [
        (N.REVERT_PAUSED, N.libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED), (N.STOP, 0)]
    assert result.state == S.DEFINED and result.snapshot['current'] is True
    assert result.diff == (dict(before_header='domain web', after_header='domain web',
                                before='state: running\ncurrent snapshot: later\n',
                                after='state: defined\ncurrent snapshot: cp\n'),)
    assert result.facts['previous_state'] == S.RUNNING and result.facts['previous_snapshot'] == 'later'
    assert result.facts['discarded'].startswith('The running state of domain web (disks and memory')


@pytest.mark.parametrize('seen, message', [
    (observed([snap('cp')], state=S.SAVED), 'has a managed save image'),
    (observed([snap('other')]), 'domain web has no snapshot cp \\(its snapshots: other\\)'),
    (observed([snap('cp', external=True)]), 'libvirt 9.0.0 cannot revert to external snapshots'),
])
def test_a_revert_is_refused_before_anything_changes(seen, message):
    with pytest.raises(OperationFailed, match=message):
        planned(state='reverted', name='cp')(seen)
