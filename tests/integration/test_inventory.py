"""The lifecycle.libvirt.libvirt inventory plugin, run by `ansible-inventory`
against the real libvirtd (a booted guest with a DHCP lease) and against both
hosts of the two-host rig (one of them stopped)."""

import json
import os
import subprocess
import sys

import libvirt
import yaml

import testbed
from conftest import run_module
from network_helpers import boot_on_network, lease_address, make_network  # noqa: F401  pylint: disable=unused-import
from rig_fixture import rig, rig_guest_factory  # noqa: F401  pylint: disable=unused-import

TAGS_NAMESPACE = 'https://github.com/lifecycle-libvirt/lifecycle.libvirt/xmlns/tags/1.0'
ANSIBLE_INVENTORY = os.path.join(os.path.dirname(sys.executable), 'ansible-inventory')


def plain(value):
    """ansible-inventory marks strings from inventory plugins as unsafe; unwrap them."""
    if isinstance(value, dict):
        if set(value) == {'__ansible_unsafe'}:
            return value['__ansible_unsafe']
        return dict((key, plain(item)) for key, item in value.items())
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def inventory(tmp_path, *extra_args, **config):
    """Run `ansible-inventory --list` on a config of this plugin; return
    (inventory or None, stderr, exit code)."""
    path = tmp_path / 'fleet.libvirt.yml'
    path.write_text(yaml.safe_dump(dict(plugin='lifecycle.libvirt.libvirt', **config)))
    process = subprocess.run([ANSIBLE_INVENTORY, '-i', str(path), '--list'] + list(extra_args),
                             capture_output=True, text=True, timeout=300, check=False,
                             env=dict(os.environ, ANSIBLE_INVENTORY_UNPARSED_FAILED='true'))
    listed = plain(json.loads(process.stdout)) if process.returncode == 0 else None
    return listed, process.stderr, process.returncode


def members(listed, group):
    return sorted(listed.get(group, {}).get('hosts', []))


def test_guest_with_its_lease_address(conn, make_network, make_guest, tmp_path):
    net = make_network()
    run_module('network', state='active', **net.params())
    vm, mac = boot_on_network(make_guest, net, label='tagged')
    address = lease_address(vm)['address']
    # Tags: metadata of the running domain, as a tool would set them.
    vm.domain().setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, '<tags><tag>web</tag><tag>blue</tag></tags>',
                            'll', TAGS_NAMESPACE, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    hypervisor = conn.getHostname()
    cache_dir = tmp_path / 'cache'
    config = dict(uris=[testbed.URI], compose=dict(guest_ip='ansible_host'),
                  keyed_groups=[dict(key='libvirt_tags', prefix='tag')],
                  cache=True, cache_plugin='ansible.builtin.jsonfile', cache_connection=str(cache_dir))

    listed, stderr, code = inventory(tmp_path, **config)
    assert code == 0, stderr
    host = listed['_meta']['hostvars'][vm.name]
    assert host['ansible_host'] == address and host['guest_ip'] == address
    assert host['libvirt_uri'] == testbed.URI and host['libvirt_hypervisor'] == hypervisor
    assert host['libvirt_state'] == 'running' and host['libvirt_vcpus'] == 1
    assert host['libvirt_memory'] == 256 * 1024 * 1024
    assert [disk['target'] for disk in host['libvirt_disks']] == ['vda']
    assert host['libvirt_interfaces'][0]['mac'] == mac and host['libvirt_interfaces'][0]['source'] == net.name
    assert host['libvirt_interfaces'][0]['addresses'][0] == dict(address=address, prefix=24, family='ipv4',
                                                                 source='lease')
    assert host['libvirt_tags'] == ['web', 'blue']
    assert vm.name in members(listed, 'hypervisor_%s' % hypervisor.replace('-', '_').replace('.', '_'))
    assert vm.name in members(listed, 'state_running')
    assert vm.name in members(listed, 'tag_web') and vm.name in members(listed, 'tag_blue')

    # Named by uuid instead.
    by_uuid_config = dict(config)
    by_uuid_config.update(inventory_hostname='uuid', cache=False)
    by_uuid, stderr, code = inventory(tmp_path, **by_uuid_config)
    assert code == 0, stderr
    assert by_uuid['_meta']['hostvars'][vm.domain().UUIDString()]['libvirt_name'] == vm.name

    # The cache answers until it is flushed.
    vm.domain().destroy()
    cached, _stderr, _code = inventory(tmp_path, **config)
    assert cached['_meta']['hostvars'][vm.name]['libvirt_state'] == 'running'
    fresh, _stderr, _code = inventory(tmp_path, '--flush-cache', **config)
    assert fresh['_meta']['hostvars'][vm.name]['libvirt_state'] == 'defined'
    assert 'ansible_host' not in fresh['_meta']['hostvars'][vm.name]
    assert vm.name in members(fresh, 'state_defined')


def test_both_rig_hosts_and_one_stopped(rig, rig_guest_factory, tmp_path):  # noqa: F811
    on_a, on_b = rig_guest_factory('inv-a'), rig_guest_factory('inv-b')
    on_a.define(rig.a)
    on_b.define(rig.b)
    config = dict(uris=[rig.a.uri, rig.b.uri])

    listed, stderr, code = inventory(tmp_path, **config)
    assert code == 0, stderr
    assert members(listed, 'hypervisor_lltest_host_a') == [on_a.name]
    assert members(listed, 'hypervisor_lltest_host_b') == [on_b.name]
    assert listed['_meta']['hostvars'][on_b.name]['libvirt_uri'] == rig.b.uri
    assert sorted(members(listed, 'state_defined')) == sorted([on_a.name, on_b.name])

    rig.b.stop_libvirtd()
    try:
        listed, stderr, code = inventory(tmp_path, **config)
        assert code == 0, stderr
        assert 'hypervisor %s skipped' % rig.b.uri in ' '.join(stderr.split())
        assert members(listed, 'hypervisor_lltest_host_a') == [on_a.name]
        assert on_b.name not in listed['_meta']['hostvars']

        _listed, stderr, code = inventory(tmp_path, **dict(config, strict=True))
        assert code != 0
        assert 'hypervisor %s skipped' % rig.b.uri in ' '.join(stderr.split())
    finally:
        rig.b.start_daemons()
