"""lifecycle.libvirt.migrate under hostile conditions, on the two-host rig.

Signals at the worst moments (SIGTERM/SIGINT as an AWX cancel or Ctrl-C,
SIGKILL as Ansible's async timeout), killed daemons, two runs at once,
disks outside every pool, secrets and odd values in the options.  Every
case asserts where the guest runs and where its snapshots are afterwards
on both hosts, that no journal is left behind, and that a re-run converges.

A migration is slowed down to 1 MiB/s (`bandwidth: 1`, a 256 MiB guest) so
that it is reliably in progress when the test strikes; the moments between
two steps are reached with the module's test-only pause point
(LIFECYCLE_LIBVIRT_TEST_PAUSE, see plugins/module_utils/_interrupt.py).
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import libvirt
import pytest

import ansible_module
from conftest import run_module
from rig_fixture import on_each_host, rig, rig_guest_factory, running_guest  # noqa: F401  pylint: disable=unused-import

SHARED = dict(unsafe=True)
SLOW = dict(bandwidth=1)
SNAPSHOTS = ('first', 'second')
JOURNAL_NS = 'https://github.com/lifecycle-libvirt/lifecycle.libvirt/snapshots-in-transit'
PAUSE_ENV = 'LIFECYCLE_LIBVIRT_TEST_PAUSE'


# Looking at both hosts -------------------------------------------------------------

def _describe(domain):
    try:
        domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, JOURNAL_NS, 0)
        journal = True
    except libvirt.libvirtError:
        journal = False
    return ('running' if domain.isActive() else 'defined',
            sorted(snapshot.getName() for snapshot in domain.listAllSnapshots(0)), journal)


def _state(rig, name):  # noqa: F811
    """Per host: None, or (state, snapshot names, journal present)."""
    return on_each_host(rig, name, _describe)


def _current_snapshot(host, name):
    conn = host.open()
    try:
        return conn.lookupByName(name).snapshotCurrent(0).getName()
    finally:
        conn.close()


def _migrating(host, name, operation=libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT):
    conn = host.open()
    try:
        stats = conn.lookupByName(name).jobStats(0)
        return stats.get('type', 0) != 0 and stats.get('operation') == operation
    except libvirt.libvirtError:
        return False
    finally:
        conn.close()


def _wait(condition, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _settled(rig, name):  # noqa: F811
    """Wait until no migration job of the domain is left on either host."""
    _wait(lambda: not any(_migrating(host, name, operation) for host in rig.hosts
                          for operation in (libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT,
                                            libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN)),
          'migration job of %s ended' % name)


# Running the module as a process the test can signal ---------------------------

class ModuleRun:
    """lifecycle.libvirt.migrate in its own process, as Ansible runs it."""

    def __init__(self, params, pause_at=None):
        args = dict(params, _ansible_check_mode=False, _ansible_diff=True)
        with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
        self.args_file = handle.name
        self.marker = handle.name + '.paused'
        env = dict(os.environ, PYTHONPATH=ansible_module.COLLECTIONS)
        if pause_at:
            env[PAUSE_ENV] = '%s:%s' % (pause_at, self.marker)
        self.process = subprocess.Popen(
            [sys.executable, '-m', ansible_module.OUR_MODULES + 'migrate', self.args_file],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def wait_paused(self):
        _wait(lambda: os.path.exists(self.marker) or self.process.poll() is not None, 'pause point reached')
        assert self.process.poll() is None, self.finish()

    def kill(self, signum):
        self.process.send_signal(signum)

    def finish(self):
        """The module's result (None when it was killed) and its output."""
        try:
            stdout, stderr = self.process.communicate(timeout=120)
        finally:
            for path in (self.args_file, self.marker):
                if os.path.exists(path):
                    os.unlink(path)
        assert 'Traceback' not in stdout + stderr, stdout + stderr
        return (json.loads(stdout) if stdout.strip() else None), stdout + stderr


def _migrate(rig, vm, check=False, source=None, dest=None, **params):  # noqa: F811
    source, dest = source or rig.a, dest or rig.b
    return run_module('migrate', check=check, uri=source.uri, dest_uri=dest.uri, name=vm.name,
                      **dict(SHARED, **params))


def _start(rig, vm, pause_at=None, **params):  # noqa: F811
    return ModuleRun(dict(uri=rig.a.uri, dest_uri=rig.b.uri, name=vm.name, **dict(SHARED, **params)),
                     pause_at=pause_at)


def _strike_mid_migration(rig, vm, signum, **params):  # noqa: F811
    run = _start(rig, vm, **dict(SLOW, **params))
    _wait(lambda: _migrating(rig.a, vm.name) or run.process.poll() is not None, 'migration started')
    assert run.process.poll() is None, run.finish()
    time.sleep(0.5)
    run.kill(signum)
    return run.finish()[0]


def _converges_on_b(rig, vm, snapshots=SNAPSHOTS, **params):  # noqa: F811
    """The domain ends on b with its snapshots and no journal; a second run changes nothing."""
    result = _migrate(rig, vm, snapshots='move', **params)
    assert not result.get('failed'), result
    assert _state(rig, vm.name) == {'a': None, 'b': ('running', list(snapshots), False)}
    again = _migrate(rig, vm, snapshots='move', **params)
    assert not again.get('failed') and not again['changed'] and again['actions'] == [], again
    return result


def _assert_on_a_intact(rig, vm, snapshots=SNAPSHOTS):  # noqa: F811
    assert _state(rig, vm.name) == {'a': ('running', list(snapshots), False), 'b': None}


# The guest ----------------------------------------------------------------------

@pytest.fixture
def vm(rig, running_guest):  # noqa: F811
    """The guest running on a with the snapshots `first` and `second` (current),
    whatever the previous test left."""
    _settled(rig, running_guest.name)
    placement = _state(rig, running_guest.name)
    if placement['b'] is not None:
        back = _migrate(rig, running_guest, source=rig.b, dest=rig.a, snapshots='move')
        assert not back.get('failed'), back
    elif placement['a'][2]:
        # a is the destination here: the move is finished there
        repaired = _migrate(rig, running_guest, source=rig.b, dest=rig.a, snapshots='move')
        assert not repaired.get('failed'), repaired
    present = _state(rig, running_guest.name)['a'][1]
    for name in SNAPSHOTS:
        if name not in present:
            taken = run_module('snapshot', uri=rig.a.uri, domain=running_guest.name, name=name)
            assert taken['changed'], taken
    _assert_on_a_intact(rig, running_guest)
    return running_guest


# Signals during the migration ---------------------------------------------------

@pytest.mark.parametrize('signum, p2p', [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=['sigterm', 'sigint_p2p'])
def test_signal_mid_migration_aborts_the_job_guest_stays(rig, vm, signum, p2p):  # noqa: F811
    before = vm.uptime(rig.a)
    params = dict(p2p=True, dest_peer_uri=rig.b.tcp_uri) if p2p else {}
    result = _strike_mid_migration(rig, vm, signum, snapshots='move', **params)
    assert result['failed'] and not result['changed'], result
    assert 'interrupted by %s, the migration job was aborted' % signal.Signals(signum).name in result['msg']
    assert 'the domain is running on the source and absent on the destination' in result['msg']
    assert 'its snapshots are back on the source' in result['msg']
    assert not _migrating(rig.a, vm.name)
    _assert_on_a_intact(rig, vm)
    assert _current_snapshot(rig.a, vm.name) == 'second'
    assert vm.uptime(rig.a) > before  # the same guest, never restarted
    _converges_on_b(rig, vm, **params)
    assert _current_snapshot(rig.b, vm.name) == 'second'


def test_sigterm_without_snapshots(rig, rig_guest_factory):  # noqa: F811
    plain = rig_guest_factory('plain')
    plain.start(rig.a)
    result = _strike_mid_migration(rig, plain, signal.SIGTERM)
    assert result['failed'] and 'interrupted by SIGTERM, the migration job was aborted' in result['msg'], result
    assert _state(rig, plain.name) == {'a': ('running', [], False), 'b': None}
    _converges_on_b(rig, plain, snapshots=[])


def test_sigkill_mid_migration_next_run_undoes_then_moves(rig, vm):  # noqa: F811
    assert _strike_mid_migration(rig, vm, signal.SIGKILL, snapshots='move') is None
    # The killed run's connection closed, libvirt abandons the migration (the
    # half-arrived guest on b goes away): the next run waits for that.
    check = _migrate(rig, vm, check=True, snapshots='move')
    assert check['changed'] and check['actions'] == ['undo_snapshot_move', 'migrate'], check
    assert check['snapshots_moved'] == list(SNAPSHOTS)
    # The guest runs on a, its snapshots are only in the journal; check mode changed nothing.
    assert _state(rig, vm.name) == {'a': ('running', [], True), 'b': None}

    real = _converges_on_b(rig, vm)
    assert real['actions'] == check['actions'] and real['snapshots_moved'] == list(SNAPSHOTS), real
    assert 'still on the source' in real['repaired']
    assert _current_snapshot(rig.b, vm.name) == 'second'


def test_sigkill_between_two_detached_snapshots(rig, vm):  # noqa: F811
    run = _start(rig, vm, pause_at='snapshot-detached', snapshots='move')
    run.wait_paused()
    run.kill(signal.SIGKILL)
    assert run.finish()[0] is None
    assert _state(rig, vm.name) == {'a': ('running', ['first'], True), 'b': None}
    # A run that does not move snapshots still puts them back first.
    refused = _migrate(rig, vm, snapshots='refuse')
    assert refused['failed'] and 'check snapshots failed' in refused['msg'], refused
    assert refused['actions'] == ['undo_snapshot_move'] and refused['changed'], refused
    _assert_on_a_intact(rig, vm)
    assert _current_snapshot(rig.a, vm.name) == 'second'
    _converges_on_b(rig, vm)


@pytest.mark.parametrize('signum', [signal.SIGKILL, signal.SIGTERM], ids=['sigkill', 'sigterm'])
def test_killed_after_migration_next_run_finishes_on_destination(rig, vm, signum):  # noqa: F811
    run = _start(rig, vm, pause_at='migrated', snapshots='move')
    run.wait_paused()
    assert _state(rig, vm.name) == {'a': None, 'b': ('running', [], True)}
    run.kill(signum)
    result = run.finish()[0]
    if signum == signal.SIGTERM:
        assert result['failed'] and 'it runs on the destination' in result['msg'], result
        assert 'Interrupted by SIGTERM' in result['msg'] and 'the next run finishes the move' in result['msg']
    else:
        assert result is None
    assert _state(rig, vm.name) == {'a': None, 'b': ('running', [], True)}

    check = _migrate(rig, vm, check=True, snapshots='move')
    assert check['changed'] and check['actions'] == ['finish_snapshot_move'], check
    finished = _migrate(rig, vm, snapshots='move')
    assert finished['changed'] and finished['actions'] == ['finish_snapshot_move'], finished
    assert 'on the destination' in finished['repaired']
    assert _current_snapshot(rig.b, vm.name) == 'second'
    _converges_on_b(rig, vm)


def test_sigkill_of_p2p_run_migration_goes_on_next_run_waits_and_finishes(rig, vm):  # noqa: F811
    params = dict(p2p=True, dest_peer_uri=rig.b.tcp_uri)
    assert _strike_mid_migration(rig, vm, signal.SIGKILL, snapshots='move', **params) is None
    # Peer-to-peer, the source daemon drives the migration: it goes on.
    assert _migrating(rig.a, vm.name)
    impatient = _migrate(rig, vm, timeout=2, snapshots='move', **params)
    assert impatient['failed'] and not impatient['changed'], impatient
    assert 'is in progress and did not end within 2 s' in impatient['msg']
    assert _state(rig, vm.name)['a'] == ('running', [], True)

    _speed_up(rig.a, vm.name)  # let it finish now
    patient = _migrate(rig, vm, snapshots='move', **params)
    assert patient['changed'] and patient['actions'] == ['finish_snapshot_move'], patient
    _converges_on_b(rig, vm, **params)


# Two runs at once -------------------------------------------------------------------

def test_two_runs_migrating_the_same_domain(rig, vm):  # noqa: F811
    runs = [_start(rig, vm, snapshots='move'), _start(rig, vm, snapshots='move')]
    results = [run.finish()[0] for run in runs]
    assert not any(result.get('failed') for result in results), results
    assert sorted(result['changed'] for result in results) == [False, True], results
    assert _state(rig, vm.name) == {'a': None, 'b': ('running', list(SNAPSHOTS), False)}
    _converges_on_b(rig, vm)


# Killed daemons -------------------------------------------------------------------

def _speed_up(host, name):
    conn = host.open()
    try:
        conn.lookupByName(name).migrateSetMaxSpeed(10000, 0)
    finally:
        conn.close()


def _daemon_killed_mid_migration(rig, vm, host):  # noqa: F811
    run = _start(rig, vm, **dict(SLOW, snapshots='move'))
    _wait(lambda: _migrating(rig.a, vm.name) or run.process.poll() is not None, 'migration started')

    def kill():
        host.stop_libvirtd('KILL')
        if host is rig.b:
            # QEMU streams on without b's daemon: let the transfer end now, so
            # that the failure comes when the source asks b to finish.
            _speed_up(rig.a, vm.name)

    killer = threading.Timer(0.5, kill)
    killer.start()
    try:
        result = run.finish()[0]
    finally:
        killer.join()
        host.start_daemons()
    return result


def test_source_daemon_killed_mid_migration(rig, vm):  # noqa: F811
    result = _daemon_killed_mid_migration(rig, vm, rig.a)
    assert result['failed'] and not result['changed'], result
    assert result['msg'].startswith('Failed to migrate %s to %s: ' % (vm.name, rig.b.uri)), result['msg']
    assert 'the domain is unknown (' in result['msg'] and not result['msg'].startswith('Failed to look up')
    assert 'kept in the domain\'s metadata' in result['msg']
    _settled(rig, vm.name)
    # The restarted daemon resumes the guest on a; its snapshots wait in the journal.
    _wait(lambda: _state(rig, vm.name) == {'a': ('running', [], True), 'b': None}, 'guest back on a')
    real = _converges_on_b(rig, vm)
    assert real['actions'] == ['undo_snapshot_move', 'migrate'], real


def test_destination_daemon_killed_mid_migration(rig, vm):  # noqa: F811
    before = vm.uptime(rig.a)
    result = _daemon_killed_mid_migration(rig, vm, rig.b)
    assert result['failed'] and not result['changed'], result
    assert result['msg'].startswith('Failed to migrate %s to %s: ' % (vm.name, rig.b.uri)), result['msg']
    assert 'its snapshots are back on the source' in result['msg']
    _settled(rig, vm.name)
    _wait(lambda: _state(rig, vm.name)['b'] is None, 'the half-arrived guest gone from b')
    _assert_on_a_intact(rig, vm)
    assert vm.uptime(rig.a) > before
    _converges_on_b(rig, vm)


# Disks the destination cannot see --------------------------------------------------

def test_disk_outside_every_pool_is_unknown_not_missing(rig, rig_guest_factory):  # noqa: F811
    loose = rig_guest_factory('loose')
    outside = os.path.join(rig.path, 'not-a-pool')
    os.makedirs(outside, exist_ok=True)
    os.chmod(outside, 0o777)
    disk = os.path.join(outside, loose.name + '.qcow2')
    os.rename(loose.disk, disk)
    loose.xml = loose.xml.replace(loose.disk, disk)
    loose.start(rig.a)
    result = run_module('migrate', uri=rig.a.uri, dest_uri=rig.b.uri, name=loose.name, **SHARED)
    assert not result.get('failed') and result['changed'], result
    disks = [check for check in result['checks'] if check['name'] == 'disks'][0]
    assert disks['passed'] and disks['detail'].startswith('unknown, not in any storage pool'), disks
    assert disk in json.dumps(result['warnings']), result
    assert _state(rig, loose.name) == {'a': None, 'b': ('running', [], False)}
    again = run_module('migrate', uri=rig.a.uri, dest_uri=rig.b.uri, name=loose.name, **SHARED)
    assert not again['changed'] and not again.get('failed'), again


# Secrets and odd values ---------------------------------------------------------------

def test_passwords_in_uris_appear_nowhere(rig, vm):  # noqa: F811
    dest_uri = rig.b.uri.replace('qemu+unix://', 'qemu+unix://admin:Dest-S3cret@') + '&password=Query-S3cret'
    peer = 'qemu+tcp://admin:Peer-S3cret@%s/system' % rig.b.address
    params = dict(uri=rig.a.uri, dest_uri=dest_uri, name=vm.name, p2p=True, dest_peer_uri=peer, snapshots='move',
                  _ansible_check_mode=False, _ansible_diff=True, **SHARED)
    moved, output = ansible_module.run_module(ansible_module.OUR_MODULES + 'migrate', params)
    assert not moved.get('failed') and moved['changed'], moved
    assert moved['destination'].startswith('qemu+unix://admin:********@'), moved['destination']
    failed, failed_output = ansible_module.run_module(ansible_module.OUR_MODULES + 'migrate', dict(
        params, uri=dest_uri, dest_uri='qemu+tcp://root:Gone-S3cret@10.77.0.9/system', p2p=False,
        dest_peer_uri=None, migrate_uri='tcp://u:Mig-S3cret@10.77.0.9:49300'))
    assert failed['failed'] and 'destination_reachable' in failed['msg'], failed
    for text in (output, failed_output):
        assert 'S3cret' not in text, text  # msg, every result field and the invocation echo
    assert _state(rig, vm.name) == {'a': None, 'b': ('running', list(SNAPSHOTS), False)}
    _converges_on_b(rig, vm)


def test_yaml_typed_strings_are_understood(rig, vm):  # noqa: F811
    params = dict(live='yes', unsafe='true', persistent='True', undefine_source='on', p2p='no',
                  bandwidth='1000', timeout='120', max_downtime='500', snapshots='move')
    result = run_module('migrate', uri=rig.a.uri, dest_uri=rig.b.uri, name=vm.name, **params)
    assert not result.get('failed') and result['changed'], result
    assert result['flags'] == ['live', 'persist_dest', 'undefine_source', 'unsafe'], result
    assert _state(rig, vm.name) == {'a': None, 'b': ('running', list(SNAPSHOTS), False)}
    again = run_module('migrate', uri=rig.a.uri, dest_uri=rig.b.uri, name=vm.name, **params)
    assert not again['changed'], again
    bad = run_module('migrate', uri=rig.a.uri, dest_uri=rig.b.uri, name=vm.name, live='maybe', bandwidth='fast')
    assert bad['failed'] and 'live' in bad['msg'], bad
    assert _state(rig, vm.name) == {'a': None, 'b': ('running', list(SNAPSHOTS), False)}


@pytest.mark.parametrize('dest_uri, message', [
    ('', 'Invalid options: dest_uri is empty'),
    ('not a uri at all', 'check destination_reachable failed'),
    ('qemu+tcp://[::1/system', 'check destination_reachable failed'),
    ('SOURCE', 'exists on both hosts'),
], ids=['empty', 'words', 'broken_ipv6', 'same_host'])
def test_bad_and_odd_destination_uris(rig, vm, dest_uri, message):  # noqa: F811
    dest_uri = rig.a.uri if dest_uri == 'SOURCE' else dest_uri
    result = run_module('migrate', uri=rig.a.uri, dest_uri=dest_uri, name=vm.name, snapshots='move', **SHARED)
    assert result['failed'] and not result.get('changed') and message in result['msg'], result
    _assert_on_a_intact(rig, vm)
