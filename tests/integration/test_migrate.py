"""lifecycle.libvirt.migrate between the two hosts of the rig (tests/testbed/rig.py).

The rig's shared image directory is on a local file system, which libvirt
cannot tell from shared storage: migrations of guests whose disk is there
opt in with ``unsafe: true`` (test_refused_without_unsafe shows libvirt's
refusal otherwise).
"""

import pytest

from conftest import run_module
from rig_fixture import rig, rig_guest_factory, running_guest  # noqa: F401  pylint: disable=unused-import

SHARED = dict(unsafe=True)


def _run(rig, source, dest, name, check=False, **params):
    return run_module('migrate', check=check, uri=source.uri, dest_uri=dest.uri, name=name, **params)


def _signature(result):
    """What check mode must predict exactly."""
    return (result['changed'], result['actions'], result['flags'], result.get('diff'),
            [(check['name'], check['passed']) for check in result['checks']])


@pytest.fixture
def on_a(rig, running_guest):  # noqa: F811
    """The shared guest, running on host a (put back there if a test left it on b)."""
    placement = running_guest.where()
    if placement['b'] == 'running' and placement['a'] is None:
        result = _run(rig, rig.b, rig.a, running_guest.name, **SHARED)
        assert not result.get('failed'), result
    elif placement != {'a': 'running', 'b': None}:
        raise AssertionError('the shared guest is lost: %s' % placement)
    return running_guest


def _assert_alive_on(vm, host, since):
    """Running there and not rebooted: its uptime kept growing."""
    uptime = vm.uptime(host)
    assert uptime > since, (uptime, since)
    return uptime


def _assert_stayed_on_a(rig, vm, result, since):
    assert result.get('failed') and not result.get('changed'), result
    assert vm.where() == {'a': 'running', 'b': None}
    return _assert_alive_on(vm, rig.a, since)


VARIANTS = {
    'live': dict(),
    'p2p': dict(p2p=True),
    'p2p_tunnelled': dict(p2p=True, tunnelled=True),
    'not_live': dict(live=False),
    'compressed_auto_converge': dict(compressed=True, auto_converge=True),
    'transient_on_destination': dict(persistent=False),
    'postcopy': dict(postcopy=True),
    'limits_and_migration_network': dict(bandwidth=1000, max_downtime=500, migrate_uri='tcp://10.77.0.2:49300'),
}


@pytest.mark.parametrize('variant', sorted(VARIANTS))
def test_migrate_running_guest_and_back(rig, on_a, variant):  # noqa: F811
    vm = on_a
    params = dict(VARIANTS[variant], **SHARED)
    if params.get('p2p'):
        params['dest_peer_uri'] = rig.b.tcp_uri
    before = vm.uptime(rig.a)

    check = _run(rig, rig.a, rig.b, vm.name, check=True, **params)
    assert check['changed'] and check['actions'] == ['migrate'], check
    assert [c['name'] for c in check['checks']] == [
        'destination_reachable', 'hypervisor_type', 'versions', 'cpu', 'disks', 'networks',
        'name_uuid_free', 'free_memory', 'snapshots']
    assert all(c['passed'] for c in check['checks']), check['checks']
    assert vm.where() == {'a': 'running', 'b': None}

    real = _run(rig, rig.a, rig.b, vm.name, **params)
    assert not real.get('failed'), real
    assert _signature(real) == _signature(check)
    assert real['source'] == rig.a.uri and real['destination'] == rig.b.uri
    assert real['state'] == 'running'
    assert real['duration'] > 0
    if real['postcopy_started']:
        # Only a post-copy variant may switch over; libvirt then keeps no
        # completed-job statistics.
        assert variant == 'postcopy'
    else:
        # An idle guest usually converges in pre-copy even with post-copy allowed.
        assert real['downtime_ms'] is not None and real['downtime_ms'] >= 0
        assert real['bytes_transferred'] > 0
    assert vm.where() == {'a': None, 'b': 'running'}
    after = _assert_alive_on(vm, rig.b, before)
    conn = rig.b.open()
    try:
        assert bool(conn.lookupByName(vm.name).isPersistent()) == params.get('persistent', True)
    finally:
        conn.close()

    again = _run(rig, rig.a, rig.b, vm.name, **params)
    assert not again.get('failed') and not again['changed'], again
    assert again['actions'] == [] and again['checks'] == []

    back = _run(rig, rig.b, rig.a, vm.name, **SHARED)
    assert back['changed'], back
    assert vm.where() == {'a': 'running', 'b': None}
    _assert_alive_on(vm, rig.a, after)


def test_offline_migration_of_stopped_domain(rig, rig_guest_factory):  # noqa: F811
    vm = rig_guest_factory('offline')
    vm.define(rig.a)
    check = _run(rig, rig.a, rig.b, vm.name, check=True, offline=True)
    assert check['changed'] and all(c['passed'] for c in check['checks']), check
    assert check['flags'] == ['offline', 'persist_dest', 'undefine_source']
    assert vm.where() == {'a': 'defined', 'b': None}

    real = _run(rig, rig.a, rig.b, vm.name, offline=True)
    assert not real.get('failed'), real
    assert _signature(real) == _signature(check)
    assert real['state'] == 'defined'
    assert vm.where() == {'a': None, 'b': 'defined'}

    again = _run(rig, rig.a, rig.b, vm.name, offline=True)
    assert not again.get('failed') and not again['changed'], again

    back = _run(rig, rig.b, rig.a, vm.name, offline=True)
    assert back['changed'] and vm.where() == {'a': 'defined', 'b': None}, back


def test_copy_storage_all(rig, rig_guest_factory):  # noqa: F811
    vm = rig_guest_factory('copy', local_disk=True)
    vm.start(rig.a)
    before = vm.uptime(rig.a)

    # The disk lives in host a's private pool: without copying it, the check fails.
    refused = _run(rig, rig.a, rig.b, vm.name)
    assert refused['failed'] and 'check disks failed' in refused['msg'], refused
    assert vm.disk in refused['msg']
    before = _assert_stayed_on_a(rig, vm, refused, before)

    check = _run(rig, rig.a, rig.b, vm.name, check=True, copy_storage='all')
    assert check['changed'] and all(c['passed'] for c in check['checks']), check
    real = _run(rig, rig.a, rig.b, vm.name, copy_storage='all')
    assert not real.get('failed'), real
    assert _signature(real) == _signature(check)
    assert 'non_shared_disk' in real['flags']
    assert real['bytes_transferred'] > 0
    assert vm.where() == {'a': None, 'b': 'running'}
    after = _assert_alive_on(vm, rig.b, before)
    with open(rig.b.outside(vm.disk), 'rb') as handle:
        assert handle.read(4) == b'QFI\xfb'  # the copy is a qcow2 image on host b

    again = _run(rig, rig.a, rig.b, vm.name, copy_storage='all')
    assert not again['changed'], again
    back = _run(rig, rig.b, rig.a, vm.name, copy_storage='all')
    assert back['changed'] and vm.where() == {'a': 'running', 'b': None}, back
    _assert_alive_on(vm, rig.a, after)


def test_networks_are_checked(rig, rig_guest_factory):  # noqa: F811
    vm = rig_guest_factory('net')
    network = "<network><name>lltest-net</name><bridge name='lltestbr0'/></network>"
    vm.xml = vm.xml.replace('</devices>', "  <interface type='network'><source network='lltest-net'/>"
                                          "<model type='virtio'/></interface>\n  </devices>")
    connections = [host.open() for host in rig.hosts]
    try:
        connections[0].networkCreateXML(network)
        vm.define(rig.a)
        missing = _run(rig, rig.a, rig.b, vm.name, check=True, offline=True)
        assert 'check networks failed: missing on the destination: network lltest-net' in missing['msg'], missing
        connections[1].networkCreateXML(network)
        present = _run(rig, rig.a, rig.b, vm.name, check=True, offline=True)
        assert present['changed'] and all(c['passed'] for c in present['checks']), present
        assert 'present on the destination: network lltest-net' in [
            c['detail'] for c in present['checks'] if c['name'] == 'networks'][0]
        assert vm.where() == {'a': 'defined', 'b': None}
    finally:
        for conn in connections:
            for net in conn.listAllNetworks(0):
                if net.name() == 'lltest-net':
                    net.destroy()
            conn.close()


# Failures: each leaves the guest running on the source -----------------------------

def test_refused_without_unsafe(rig, on_a):  # noqa: F811
    before = on_a.uptime(rig.a)
    result = _run(rig, rig.a, rig.b, on_a.name)
    assert 'Failed to migrate %s to %s' % (on_a.name, rig.b.uri) in result['msg'], result
    assert 'unsafe' in result['msg'].lower()
    assert 'the domain is running on the source and absent on the destination' in result['msg']
    assert all(c['passed'] for c in result['checks'])
    _assert_stayed_on_a(rig, on_a, result, before)


def test_destination_unreachable(rig, on_a):  # noqa: F811
    before = on_a.uptime(rig.a)
    for check in (True, False):
        result = run_module('migrate', check=check, uri=rig.a.uri, name=on_a.name,
                            dest_uri='qemu+unix:///system?socket=%s/no-such-host/libvirt-sock' % rig.path,
                            **SHARED)
        assert 'check destination_reachable failed' in result['msg'], result
        assert result['checks'][0]['name'] == 'destination_reachable'
        assert not result['checks'][0]['passed']
    _assert_stayed_on_a(rig, on_a, result, before)


def test_peer_unreachable_from_source(rig, on_a):  # noqa: F811
    # The module reaches b, but a's daemon is sent to an address nobody has.
    before = on_a.uptime(rig.a)
    result = _run(rig, rig.a, rig.b, on_a.name, p2p=True, dest_peer_uri='qemu+tcp://10.77.0.3/system', **SHARED)
    assert 'Failed to migrate %s' % on_a.name in result['msg'], result
    _assert_stayed_on_a(rig, on_a, result, before)


def test_destination_daemon_stopped(rig, on_a):  # noqa: F811
    before = on_a.uptime(rig.a)
    rig.b.stop_libvirtd()
    try:
        result = _run(rig, rig.a, rig.b, on_a.name, **SHARED)
    finally:
        rig.b.start_daemons()
    assert 'check destination_reachable failed' in result['msg'], result
    _assert_stayed_on_a(rig, on_a, result, before)


def test_name_on_both_hosts(rig, on_a, rig_guest_factory):  # noqa: F811
    before = on_a.uptime(rig.a)
    conn = rig.b.open()
    clash = conn.defineXML(on_a.xml)  # same name, another uuid, stopped
    try:
        for check in (True, False):
            result = _run(rig, rig.a, rig.b, on_a.name, check=check, **SHARED)
            assert 'exists on both hosts' in result['msg'], result
            assert rig.a.uri in result['msg'] and rig.b.uri in result['msg']
    finally:
        clash.undefine()
        conn.close()
    _assert_stayed_on_a(rig, on_a, result, before)


def test_uuid_clash_fails_check(rig, on_a, rig_guest_factory):  # noqa: F811
    before = on_a.uptime(rig.a)
    conn = rig.a.open()
    uuid = conn.lookupByName(on_a.name).UUIDString()
    conn.close()
    other = rig_guest_factory('twin')
    conn = rig.b.open()
    clash = conn.defineXML(other.xml.replace('<memory', '<uuid>%s</uuid>\n  <memory' % uuid, 1))
    try:
        result = _run(rig, rig.a, rig.b, on_a.name, **SHARED)
    finally:
        clash.undefine()
        conn.close()
    assert 'check name_uuid_free failed' in result['msg'] and other.name in result['msg'], result
    _assert_stayed_on_a(rig, on_a, result, before)


def test_timeout_aborts_and_guest_stays(rig, on_a):  # noqa: F811
    before = on_a.uptime(rig.a)
    # 1 MiB/s for ~100 MiB of memory: far longer than the 2 s allowed.
    result = _run(rig, rig.a, rig.b, on_a.name, bandwidth=1, timeout=2, **SHARED)
    assert 'timed out after 2 s, the migration job was aborted' in result['msg'], result
    assert result['duration'] < 60
    _assert_stayed_on_a(rig, on_a, result, before)


def test_domain_on_neither_host(rig):  # noqa: F811
    result = _run(rig, rig.a, rig.b, 'lltest-nowhere', **SHARED)
    assert result['failed'] and 'exists neither on the source' in result['msg'], result


def test_invalid_options(rig, on_a):  # noqa: F811
    result = _run(rig, rig.a, rig.b, on_a.name, tunnelled=True, **SHARED)
    assert result['msg'] == 'Invalid options: tunnelled requires p2p', result
    assert on_a.where() == {'a': 'running', 'b': None}


def test_snapshots_are_refused_or_moved_with_their_metadata(rig, rig_guest_factory):  # noqa: F811
    vm = rig_guest_factory('snap')
    vm.start(rig.a)
    for name in ('first', 'second'):
        taken = run_module('snapshot', uri=rig.a.uri, domain=vm.name, name=name)
        assert taken['changed'], taken

    refused = _run(rig, rig.a, rig.b, vm.name, **SHARED)
    assert refused['failed'] and 'check snapshots failed' in refused['msg'], refused
    assert 'snapshots=move' in refused['msg']
    assert vm.where() == {'a': 'running', 'b': None}

    check = _run(rig, rig.a, rig.b, vm.name, check=True, snapshots='move', **SHARED)
    real = _run(rig, rig.a, rig.b, vm.name, snapshots='move', **SHARED)
    assert not real.get('failed'), real
    assert _signature(real) == _signature(check)
    assert real['snapshots_moved'] == check['snapshots_moved'] == ['first', 'second']
    assert vm.where() == {'a': None, 'b': 'running'}
    moved = run_module('snapshot_info', uri=rig.b.uri, domain=vm.name)
    assert [s['name'] for s in moved['snapshots']] == ['first', 'second']
    assert [s['name'] for s in moved['snapshots'] if s['current']] == ['second']
    # The moved metadata is usable: revert to the first snapshot on host b.
    reverted = run_module('snapshot', uri=rig.b.uri, domain=vm.name, name='first', state='reverted')
    assert reverted['changed'] and not reverted.get('failed'), reverted
    assert _run(rig, rig.a, rig.b, vm.name, snapshots='move', **SHARED)['changed'] is False
