"""Logic of the migrate module: options -> libvirt flags, conflicts, placement (pure), and the checks
against libvirt's in-process test driver."""

import libvirt
import pytest

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtClient, OperationFailed
from ansible_collections.lifecycle.libvirt.plugins.module_utils._migration import (
    JOURNAL_NS, Checks, JobWatcher, MIGRATE_ARGUMENT_SPEC, MigrationSpec, _check_disks, _check_identity,
    _journal_xml, journal_entries, placement, repair_direction)


def spec(**options):
    params = {name: option.get('default') for name, option in MIGRATE_ARGUMENT_SPEC.items()}
    params.update(name='web01', dest_uri='qemu+ssh://kvm02/system')
    params.update(options)
    return MigrationSpec(params)


def test_defaults_are_a_live_persistent_move():
    migration = spec()
    assert migration.flag_names == ['LIVE', 'PERSIST_DEST', 'UNDEFINE_SOURCE']
    assert migration.flags == (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST
                               | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
    assert migration.parameters == {}


@pytest.mark.parametrize('options, flags', [
    (dict(live=False), ['PERSIST_DEST', 'UNDEFINE_SOURCE']),
    (dict(offline=True), ['OFFLINE', 'PERSIST_DEST', 'UNDEFINE_SOURCE']),
    (dict(offline=True, live=False), ['OFFLINE', 'PERSIST_DEST', 'UNDEFINE_SOURCE']),
    (dict(p2p=True, tunnelled=True), ['LIVE', 'PEER2PEER', 'TUNNELLED', 'PERSIST_DEST', 'UNDEFINE_SOURCE']),
    (dict(persistent=False, undefine_source=False), ['LIVE']),
    (dict(copy_storage='all'), ['LIVE', 'PERSIST_DEST', 'UNDEFINE_SOURCE', 'NON_SHARED_DISK']),
    (dict(copy_storage='incremental'), ['LIVE', 'PERSIST_DEST', 'UNDEFINE_SOURCE', 'NON_SHARED_INC']),
    (dict(postcopy=True, auto_converge=True, compressed=True, unsafe=True),
     ['LIVE', 'PERSIST_DEST', 'UNDEFINE_SOURCE', 'POSTCOPY', 'AUTO_CONVERGE', 'COMPRESSED', 'UNSAFE']),
])
def test_flags_follow_the_options(options, flags):
    migration = spec(**options)
    assert migration.flag_names == flags
    expected = 0
    for name in flags:
        expected |= getattr(libvirt, 'VIR_MIGRATE_' + name)
    assert migration.flags == expected


def test_parameters_carry_uri_and_bandwidth():
    migration = spec(migrate_uri='tcp://10.0.9.2:49152', bandwidth=200)
    assert migration.parameters == {libvirt.VIR_MIGRATE_PARAM_URI: 'tcp://10.0.9.2:49152',
                                    libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 200}


def test_peer_uri_defaults_to_dest_uri():
    assert spec(p2p=True).peer_uri == 'qemu+ssh://kvm02/system'
    assert spec(p2p=True, dest_peer_uri='qemu+tcp://10.0.9.2/system').peer_uri == 'qemu+tcp://10.0.9.2/system'


@pytest.mark.parametrize('options, why', [
    (dict(offline=True, live=True), 'offline and live are mutually exclusive'),
    (dict(offline=True, copy_storage='all'), 'offline migration cannot copy storage'),
    (dict(offline=True, postcopy=True), 'offline migration cannot use postcopy'),
    (dict(offline=True, persistent=False), 'offline migration moves the definition, so it needs persistent=true'),
    (dict(tunnelled=True), 'tunnelled requires p2p'),
    (dict(p2p=True, tunnelled=True, migrate_uri='tcp://h:1'),
     'tunnelled sends the data through libvirtd; migrate_uri cannot be set'),
    (dict(dest_peer_uri='qemu+tcp://h/system'), 'dest_peer_uri is only used with p2p'),
    (dict(live=False, postcopy=True), 'postcopy needs a live migration'),
    (dict(timeout=0), 'timeout must be positive'),
    (dict(bandwidth=-1), 'bandwidth must be positive'),
    (dict(max_downtime=0), 'max_downtime must be positive'),
    (dict(dest_uri=''), 'dest_uri is empty'),
    (dict(dest_uri='  '), 'dest_uri is empty'),
])
def test_conflicting_options_are_refused(options, why):
    with pytest.raises(OperationFailed) as caught:
        spec(**options)
    assert str(caught.value) == 'Invalid options: ' + why


@pytest.mark.parametrize('on_source, on_destination, offline, decision', [
    ('running', None, False, 'migrate'),
    (None, 'running', False, 'done'),
    ('defined', 'running', False, 'done'),   # undefine_source=false left the definition
    ('running', 'running', False, 'both'),
    ('running', 'defined', False, 'both'),
    (None, None, False, 'neither'),
    ('defined', None, False, 'stopped-live'),
    ('defined', None, True, 'migrate'),
    (None, 'defined', True, 'done'),
    ('running', None, True, 'running-offline'),
    (None, None, True, 'neither'),
])
def test_placement(on_source, on_destination, offline, decision):
    assert placement(on_source, on_destination, offline) == decision


class _RecordingJob:
    """Stands in for the domain whose migration job the watcher drives: it
    reports a pass count and records what the watcher asked for."""

    def __init__(self, iterations):
        self.iterations = list(iterations)
        self.calls = []

    def jobStats(self, _flags):  # noqa: N802 -- libvirt's spelling
        return {'memory_iteration': self.iterations.pop(0) if len(self.iterations) > 1 else self.iterations[0]}

    def migrateStartPostCopy(self, _flags):  # noqa: N802
        self.calls.append('postcopy')

    def abortJob(self):  # noqa: N802
        self.calls.append('abort')


def _watch(job, timeout, postcopy, seconds):
    watcher = JobWatcher(job, timeout, postcopy)
    watcher.start()
    watcher.finished.wait(seconds)
    watcher.finished.set()
    watcher.join()
    return watcher


def test_watcher_switches_to_postcopy_after_a_full_pass_and_never_aborts_then():
    job = _RecordingJob([1, 1, 2, 3])
    watcher = _watch(job, timeout=0.5, postcopy=True, seconds=1.2)
    assert job.calls == ['postcopy'] and watcher.in_postcopy and not watcher.aborted


def test_watcher_leaves_a_first_pass_alone_and_aborts_on_timeout():
    job = _RecordingJob([1])
    watcher = _watch(job, timeout=0.5, postcopy=True, seconds=1.2)
    assert job.calls == ['abort'] and watcher.aborted and not watcher.in_postcopy


def test_destination_is_shown_without_its_password():
    migration = spec(dest_uri='qemu+tcp://admin:S3cret@kvm02/system?password=Other')
    assert 'S3cret' not in migration.shown_dest_uri and 'Other' not in migration.shown_dest_uri
    assert migration.shown_dest_uri.startswith('qemu+tcp://admin:********@kvm02/system?')
    assert migration.dest_uri.startswith('qemu+tcp://admin:S3cret@')  # libvirt still gets it


SNAPSHOT_XML = ("<domainsnapshot><name>a&amp;b</name><description>]]&gt; &lt;x/&gt;</description>"
                "<domain type='qemu'><name>web01</name></domain></domainsnapshot>")


def test_journal_keeps_every_snapshot_xml_exactly():
    snapshots = [('base', '<domainsnapshot><name>base</name></domainsnapshot>', False),
                 ('a&b', SNAPSHOT_XML, True)]
    text = _journal_xml(snapshots)
    assert journal_entries(text) == snapshots
    # As libvirt returns it: the root element in the journal's namespace.
    stored = text.replace('<snapshots>', '<lifecycle:snapshots xmlns:lifecycle="%s">' % JOURNAL_NS).replace(
        '</snapshots>', '</lifecycle:snapshots>')
    assert journal_entries(stored) == snapshots
    assert journal_entries(_journal_xml([])) == []


@pytest.mark.parametrize('on_source, on_dest, journal_on_source, journal_on_dest, direction', [
    ('running', None, False, False, None),         # nothing half-done
    (None, 'running', False, False, None),
    ('running', None, True, False, 'undo'),        # killed before or during the migration
    ('defined', None, True, False, 'undo'),        # the same, offline
    (None, 'running', False, True, 'finish'),      # killed after the migration
    (None, 'defined', False, True, 'finish'),
    ('defined', 'running', True, True, 'finish'),  # undefine_source=false left a definition
    ('defined', 'running', True, False, 'finish'),  # only the left definition's journal remains
    ('running', 'running', True, True, None),      # on both hosts: placement refuses
    ('running', 'defined', True, False, None),
])
def test_repair_direction(on_source, on_dest, journal_on_source, journal_on_dest, direction):
    assert repair_direction(on_source, on_dest, journal_on_source, journal_on_dest) == direction


DISKS = _xml.parse_xml("<domain><devices><disk type='file' device='disk'><source file='/elsewhere/web.img'/></disk>"
                       "</devices></domain>", 'domain XML')


def test_the_destination_is_asked_through_lookups_that_only_take_not_found_for_absent():
    dest = LibvirtClient('test:///default')  # libvirt's in-process test driver, with its domain "test"
    try:
        uuid = dest.require_domain('test').UUIDString()
        checks = Checks()
        _check_identity(checks, dest, 'test', uuid)
        _check_identity(checks, dest, 'lltest-elsewhere', '0b6c4d8e-7f1a-4c55-9d0e-2f3a4b5c6d7e')
        _check_disks(checks, dest, DISKS, 'none')
        assert [(check['name'], check['passed'], check['detail']) for check in checks.results] == [
            ('name_uuid_free', False, 'the destination has a domain with the same name test and uuid %s '
                                      '(domain test)' % uuid),
            ('name_uuid_free', True, 'no domain with this name or uuid on the destination'),
            ('disks', True, 'unknown, not in any storage pool of the destination: /elsewhere/web.img')]
        dest.conn.close()  # as when the destination's daemon goes away: nothing is "absent" any more
        with pytest.raises(OperationFailed, match='^Failed to look up domain lltest-elsewhere: '):
            _check_identity(Checks(), dest, 'lltest-elsewhere', uuid)
        with pytest.raises(OperationFailed, match='^Failed to list the storage pools of test:///default: '):
            _check_disks(Checks(), dest, DISKS, 'none')
    finally:
        dest.close()
