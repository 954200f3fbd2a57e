"""lifecycle.libvirt.snapshot and snapshot_info against the real daemon,
with a guest that boots and keeps a boot counter on its data disk."""

import os
import re

from conftest import run_module

MARKERS = re.compile(r'LIFECYCLE-READY boots=\d+')


def markers(g):
    with open(g.serial_log, errors='replace') as handle:
        return len(MARKERS.findall(handle.read()))


def start(g):
    """Define and boot the guest; return its boot counter."""
    assert run_module('domain', xml=g.xml, state='running')['changed']
    return g.wait_ready()


def define(g):
    assert run_module('domain', xml=g.xml, state='defined')['changed']


def snapshot_names(g):
    return sorted(g.domain().snapshotListNames(0))


def disk_source(g):
    return re.search(r"<source file='([^']+)'", g.domain().XMLDesc(0)).group(1)


def check_then_real(module='snapshot', **params):
    """Run in check mode, then for real: both report the same change."""
    check = run_module(module, check=True, **params)
    real = run_module(module, **params)
    assert check['changed'] is True and real['changed'] is True, (check, real)
    assert check['diff'] == real['diff'] and check['actions'] == real['actions']
    assert check['deleted'] == real['deleted']
    return check, real


def test_revert_brings_back_disk_and_memory_without_a_fresh_boot(test_guest):
    g = test_guest
    assert start(g) == 1
    with g.shell() as sh:
        sh.run('echo before-snapshot > /tmp/in-memory')
        uptime_at_snapshot = float(sh.run('cut -d" " -f1 /proc/uptime'))
    params = dict(domain=g.name, name='checkpoint', description='before the change')
    check, created = check_then_real(**params)
    assert created['actions'] == ['create'] and created['deleted'] == []
    snap = created['snapshot']
    assert (snap['name'], snap['state'], snap['memory'], snap['external'], snap['current']) == (
        'checkpoint', 'running', True, False, True)
    assert snap['description'] == 'before the change' and snap['creation_time'] > 0
    assert check['snapshot']['creation_time'] is None and created['duration'] > 0
    assert 'disks and memory' in created['diff'][0]['after']
    again = run_module('snapshot', **params)
    assert again['changed'] is False and again['actions'] == [] and again['snapshot']['name'] == 'checkpoint'

    # The guest moves on: a new file on its data disk, and a reboot.
    with g.shell() as sh:
        sh.run('echo after-snapshot > /data/after; sync')
        sh.run('reboot')
    assert g.wait_ready(count=2) == 2
    with g.shell() as sh:
        assert sh.run('cat /data/after').strip() == 'after-snapshot'
        assert sh.run('test -e /tmp/in-memory; echo $?').strip() == '1'

    revert = dict(domain=g.name, name='checkpoint', state='reverted')
    check = run_module('snapshot', check=True, **revert)
    assert check['changed'] is True and check['state'] == 'running' and markers(g) == 2
    reverted = run_module('snapshot', **revert)
    assert reverted['changed'] is True and reverted['actions'] == ['revert'] == check['actions']
    assert reverted['diff'] == check['diff']
    assert reverted['state'] == 'running' and reverted['previous_state'] == 'running'
    assert reverted['previous_snapshot'] == 'checkpoint' and 'replaced by snapshot checkpoint' in reverted['discarded']
    assert g.state() == 'running'
    with g.shell() as sh:
        assert sh.run('cat /data/boots').strip() == '1'
        assert sh.run('test -e /data/after; echo $?').strip() == '1'
        # Memory came back too: the file in RAM (gone after the reboot) is
        # there again, and the clock goes on from the snapshot.
        assert sh.run('cat /tmp/in-memory').strip() == 'before-snapshot'
        assert float(sh.run('cut -d" " -f1 /proc/uptime')) >= uptime_at_snapshot
    assert markers(g) <= 2  # no new boot
    # A revert always acts again.
    assert run_module('snapshot', **revert)['changed'] is True


def test_stopped_domain_snapshot_reverts_its_disk(test_guest):
    g = test_guest
    define(g)
    created = check_then_real(domain=g.name, name='cold')[1]
    assert (created['snapshot']['state'], created['snapshot']['memory']) == ('defined', False)
    assert start(g) == 1  # the first boot formats the data disk
    reverted = run_module('snapshot', domain=g.name, name='cold', state='reverted', revert_state='running')
    assert reverted['actions'] == ['revert_running'] and reverted['state'] == 'running'
    # The disk is blank again: the guest formats it anew and counts from 1.
    assert g.wait_ready() == 1
    stopped = run_module('snapshot', domain=g.name, name='cold', state='reverted')
    assert stopped['actions'] == ['revert'] and stopped['state'] == 'defined' and g.state() == 'defined'


def test_delete_is_idempotent_and_checked_first(test_guest):
    g = test_guest
    define(g)
    assert run_module('snapshot', domain=g.name, name='one', atomic=True)['actions'] == ['create']
    params = dict(domain=g.name, name='one', state='absent')
    check, deleted = check_then_real(**params)
    assert deleted['deleted'] == ['one'] and deleted['actions'] == ['delete']
    assert 'snapshot: one' in deleted['diff'][0]['before'] and deleted['diff'][0]['after'] == ''
    assert snapshot_names(g) == []
    again = run_module('snapshot', **params)
    assert again['changed'] is False and again['deleted'] == [] and again['snapshot'] is None


def test_tree_children_delete_and_retention(test_guest):
    g = test_guest
    define(g)
    for name in ('base', 'a1', 'a2'):
        run_module('snapshot', domain=g.name, name=name)
    run_module('snapshot', domain=g.name, name='base', state='reverted')
    for name in ('b1', 'nightly-1', 'nightly-2', 'nightly-3'):
        run_module('snapshot', domain=g.name, name=name)

    info = run_module('snapshot_info', domain=g.name)
    assert info['changed'] is False and info['count'] == 7 and info['current'] == 'nightly-3'
    by_name = dict((s['name'], s) for s in info['snapshots'])
    assert by_name['base']['children'] == ['a1', 'b1'] and by_name['a2']['parent'] == 'a1'
    assert [s['name'] for s in info['snapshots']][0] == 'base'
    assert [n['name'] for n in info['tree']] == ['base']
    assert [n['name'] for n in info['tree'][0]['children']] == ['a1', 'b1']

    # Retention among the nightlies only: the two newest stay.
    keep = dict(domain=g.name, state='absent', keep=2, name_prefix='nightly-')
    check, pruned = check_then_real(**keep)
    assert pruned['deleted'] == ['nightly-1']
    assert run_module('snapshot', **keep)['changed'] is False

    # A new nightly with a generated name, keeping two: the oldest goes.
    # (The name comes from the clock, so check and real run may differ in it.)
    rotate = dict(domain=g.name, name_prefix='nightly-', keep=2)
    check = run_module('snapshot', check=True, **rotate)
    rotated = run_module('snapshot', **rotate)
    for result in (check, rotated):
        assert result['changed'] and result['actions'] == ['create', 'delete']
        assert result['snapshot']['name'].startswith('nightly-1') and result['deleted'] == ['nightly-2']

    # The subtree under a1 goes with children=delete; b1 and its line stay.
    subtree = dict(domain=g.name, name='a1', state='absent', children='delete')
    check, removed = check_then_real(**subtree)
    assert removed['deleted'] == ['a1', 'a2'] and removed['actions'] == ['delete_with_children']
    assert len(removed['diff']) == 2
    assert run_module('snapshot', **subtree)['changed'] is False
    assert 'a1' not in snapshot_names(g) and 'b1' in snapshot_names(g)

    # Deleting a parent keeps (re-parents) its children by default.
    run_module('snapshot', domain=g.name, name='base', state='absent')
    info = run_module('snapshot_info', domain=g.name)
    assert dict((s['name'], s['parent']) for s in info['snapshots'])['b1'] is None

    # Retention over all snapshots.
    everything = run_module('snapshot', domain=g.name, state='absent', keep=0)
    assert everything['changed'] and snapshot_names(g) == []
    assert run_module('snapshot_info', domain=g.name)['tree'] == []


def test_external_disk_only_snapshot_merges_back_when_deleted(test_guest):
    g = test_guest
    base = g.disk_path
    assert start(g) == 1
    # The test guest has no guest agent: quiesce is refused before acting.
    frozen = run_module('snapshot', domain=g.name, name='frozen', disk_only=True, quiesce=True)
    assert frozen['failed'] and 'guest agent is not connected' in frozen['msg']
    assert snapshot_names(g) == [] and disk_source(g) == base
    overlay = os.path.join(g.workdir, 'overlay.qcow2')
    params = dict(domain=g.name, name='ext', disk_only=True, disks=[dict(target='vda', file=overlay)])
    created = check_then_real(**params)[1]
    snap = created['snapshot']
    assert (snap['state'], snap['memory'], snap['external'], snap['disk_only']) == ('disk-snapshot', False, True, True)
    assert snap['disks'] == [dict(target='vda', snapshot='external', file=overlay)]
    assert disk_source(g) == overlay and os.path.exists(overlay)
    assert run_module('snapshot', **params)['changed'] is False
    with g.shell() as sh:
        sh.run('echo written-to-overlay > /data/x; sync')

    # libvirt 9.0 cannot revert to it: refused before anything changes.
    refused = run_module('snapshot', domain=g.name, name='ext', state='reverted')
    assert refused['failed'] and 'cannot revert to external snapshots' in refused['msg']
    assert 'libvirt 9.0' in refused['msg'] or 'supported from libvirt 9.7.0' in refused['msg']
    assert g.state() == 'running' and disk_source(g) == overlay

    # Deleting it merges the overlay into the base image (block commit).
    deleted = check_then_real(domain=g.name, name='ext', state='absent')[1]
    assert deleted['deleted'] == ['ext'] and snapshot_names(g) == []
    assert disk_source(g) == base and not os.path.exists(overlay)
    with g.shell() as sh:
        assert sh.run('cat /data/x').strip() == 'written-to-overlay'

    # The same for a stopped domain (libvirt's default overlay name this time).
    run_module('domain', name=g.name, state='defined', force=True, shutdown_timeout=30)
    stopped = run_module('snapshot', domain=g.name, name='ext-cold', disk_only=True)
    assert stopped['changed'] and disk_source(g) != base
    assert run_module('snapshot', domain=g.name, name='ext-cold', state='absent')['deleted'] == ['ext-cold']
    assert disk_source(g) == base

    # The merged disk still boots and holds everything.
    assert start(g) == 2
    with g.shell() as sh:
        assert sh.run('cat /data/x').strip() == 'written-to-overlay'


BAD_INPUTS = [
    ('unknown-domain', dict(domain='lltest-no-such-domain', name='x'), 'Failed to find domain lltest-no-such-domain'),
    ('unknown-domain-absent', dict(domain='lltest-no-such-domain', name='x', state='absent'),
     'Failed to find domain lltest-no-such-domain'),
    ('revert-unknown', dict(name='nope', state='reverted'), 'has no snapshot nope (its snapshots: keep-me)'),
    ('revert-without-name', dict(state='reverted'), 'needs the name of the snapshot'),
    ('absent-without-name', dict(state='absent'), 'needs name (the snapshot to delete) or keep'),
    ('unknown-target', dict(name='x', disk_only=True, disks=[dict(target='vdz', file='/tmp/lltest-x.qcow2')]),
     'vdz is not a disk of the domain (its disks: vda)'),
    ('disks-without-disk-only', dict(name='x', disks=[dict(target='vda')]), 'needs disk_only=true'),
    ('relative-overlay', dict(name='x', disk_only=True, disks=[dict(target='vda', file='x.qcow2')]),
     'must be an absolute path'),
    ('internal-quiesce', dict(name='x', quiesce=True), 'quiesce needs disk_only=true'),
    ('quiesce-stopped', dict(name='x', quiesce=True, disk_only=True), 'quiesce needs a running domain'),
    ('keep-zero-present', dict(name='x', keep=0), 'keep must be 1 or more'),
    ('keep-and-name-absent', dict(name='x', keep=1, state='absent'), 'either name'),
]


def test_bad_input_fails_clearly_and_changes_nothing(test_guest):
    g = test_guest
    define(g)
    run_module('snapshot', domain=g.name, name='keep-me')
    for label, params, message in BAD_INPUTS:
        for check in (True, False):
            result = run_module('snapshot', check=check, **dict(dict(domain=g.name), **params))
            assert result.get('failed') and message in result['msg'], (label, result)
            assert result['msg'].startswith('Failed to'), (label, result)
    assert snapshot_names(g) == ['keep-me'] and g.state() == 'defined'


def test_info_of_unknown_domain_fails():
    result = run_module('snapshot_info', domain='lltest-no-such-domain')
    assert result['failed'] and result['msg'].startswith('Failed to find domain lltest-no-such-domain')
