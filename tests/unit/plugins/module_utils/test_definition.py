"""The structured options -> domain XML builder (pure: no libvirt)."""

import pytest

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _definition as D
from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml


def definition(**overrides):
    d = dict(name='web', virt_type='qemu', arch=None, machine=None, memory_kib=262144, max_memory_kib=262144,
             vcpus=1, max_vcpus=1, cpu_mode=None, cpu_model=None, firmware='bios', secure_boot=False, boot=[],
             disks=[], interfaces=[], graphics='none', graphics_listen=None, graphics_password=None,
             serial_console=True, guest_agent=True, rng=True, tpm=False, description=None, tags=[], kernel=None, initrd=None, cmdline=None,
             serial_log=None)
    d.update(overrides)
    return D.build_domain_xml(d)


def disk(**overrides):
    d = dict(type='volume', device='disk', bus='virtio', cache=None, readonly=False, pool='default',
             volume='root.qcow2', path=None, format='qcow2')
    d.update(overrides)
    return d


def nic(**overrides):
    d = dict(network=None, bridge=None, direct=None, mac=None, model='virtio')
    d.update(overrides)
    return d


def test_minimal_definition_has_memory_vcpu_console_agent_rng():
    root = definition()
    assert root.get('type') == 'qemu' and root.findtext('name') == 'web'
    assert (root.find('memory').text, root.find('memory').get('unit')) == ('262144', 'KiB')
    assert root.findtext('currentMemory') == '262144'
    assert root.find('vcpu').text == '1' and root.find('vcpu').get('current') is None
    assert root.find('os').get('firmware') is None and root.findtext('os/type') == 'hvm'
    assert root.find('features/acpi') is not None and root.find('cpu') is None
    assert root.find('devices/console').get('type') == 'pty'
    assert root.find('devices/channel/target').get('name') == 'org.qemu.guest_agent.0'
    assert root.findtext('devices/rng/backend') == '/dev/urandom'
    assert root.find('devices/graphics') is None and root.find('devices/tpm') is None


def test_what_is_turned_off_is_left_out():
    root = definition(serial_console=False, guest_agent=False, rng=False)
    assert list(root.find('devices')) == []


def test_max_memory_and_vcpus_make_room_to_grow():
    root = definition(memory_kib=262144, max_memory_kib=524288, vcpus=1, max_vcpus=4)
    assert root.findtext('memory') == '524288' and root.findtext('currentMemory') == '262144'
    assert root.find('vcpu').text == '4' and root.find('vcpu').get('current') == '1'


def test_disk_targets_are_numbered_per_prefix():
    disks = [disk(), disk(bus='sata', device='cdrom'), disk(), disk(bus='ide'), disk(bus='scsi')]
    assert D.disk_targets(disks) == ['vda', 'sda', 'vdb', 'hda', 'sdb']
    assert D.disk_targets([disk()] * 28)[25:] == ['vdz', 'vdaa', 'vdab']


def test_disks_become_volume_file_and_block_sources():
    cdrom = disk(type='file', path='/img/a.iso', device='cdrom', bus='sata', format='raw')
    root = definition(disks=[disk(cache='none'), cdrom,
                             disk(type='block', path='/dev/vg/lv', format='raw', readonly=True)])
    volume, cdrom, block = root.findall('devices/disk')
    assert volume.find('source').attrib == {'pool': 'default', 'volume': 'root.qcow2'}
    assert volume.find('driver').attrib == {'name': 'qemu', 'type': 'qcow2', 'cache': 'none'}
    assert volume.find('readonly') is None
    assert (cdrom.get('device'), cdrom.find('source').get('file')) == ('cdrom', '/img/a.iso')
    assert cdrom.find('readonly') is not None and cdrom.find('target').attrib == {'dev': 'sda', 'bus': 'sata'}
    assert block.get('type') == 'block' and block.find('source').get('dev') == '/dev/vg/lv'
    assert block.find('readonly') is not None


def test_interfaces_network_bridge_direct_with_mac_and_model():
    root = definition(interfaces=[nic(network='default', mac='52:54:00:AA:BB:CC'), nic(bridge='br0', model='e1000'),
                                  nic(direct='eth0')])
    network, bridge, direct = root.findall('devices/interface')
    assert network.get('type') == 'network' and network.find('source').get('network') == 'default'
    assert network.find('mac').get('address') == '52:54:00:aa:bb:cc'
    assert bridge.find('source').get('bridge') == 'br0' and bridge.find('model').get('type') == 'e1000'
    assert bridge.find('mac') is None
    assert direct.get('type') == 'direct' and direct.find('source').attrib == {'dev': 'eth0', 'mode': 'bridge'}


def test_cpu_modes():
    assert definition(cpu_mode='host-passthrough').find('cpu').attrib == {'mode': 'host-passthrough'}
    custom = definition(cpu_mode='custom', cpu_model='Haswell').find('cpu')
    assert custom.get('mode') == 'custom' and custom.findtext('model') == 'Haswell'


def test_uefi_with_secure_boot_asks_for_smm():
    root = definition(firmware='uefi', secure_boot=True, machine='q35', tpm=True)
    assert root.find('os').get('firmware') == 'efi'
    assert root.find('os/firmware/feature').attrib == {'enabled': 'yes', 'name': 'secure-boot'}
    assert root.find('features/smm').get('state') == 'on'
    assert root.find('os/type').get('machine') == 'q35'
    assert root.find('devices/tpm').get('model') == 'tpm-crb'


def test_boot_order_graphics_description_and_tags():
    root = definition(boot=['cdrom', 'hd'], graphics='vnc', graphics_listen='127.0.0.1', graphics_password='pw',
                      description='web server', tags=['web', 'prod'])
    assert [b.get('dev') for b in root.findall('os/boot')] == ['cdrom', 'hd']
    graphics = root.find('devices/graphics')
    assert (graphics.get('type'), graphics.get('passwd')) == ('vnc', 'pw')
    assert graphics.find('listen').get('address') == '127.0.0.1'
    assert root.findtext('description') == 'web server'
    tags = root.findall('metadata/{%s}tags/{%s}tag' % (D.TAGS_NAMESPACE, D.TAGS_NAMESPACE))
    assert [t.text for t in tags] == ['web', 'prod']
    assert 'pw' not in _xml.masked_text(root)


@pytest.mark.parametrize('value, message', [
    ('512M', None), ('1G', None), (4096, None), ('1000', 'whole number of KiB'), ('0', 'positive'),
    ('lots', 'is not a size')])
def test_memory_goes_through_the_one_size_parser(value, message):
    if message is None:
        assert D.memory_kib(value, 'memory') * 1024 == {'512M': 2 ** 29, '1G': 2 ** 30, 4096: 4096}[value]
    else:
        with pytest.raises(D.DefinitionError, match=message):
            D.memory_kib(value, 'memory')


def test_direct_kernel_boot_and_serial_log():
    root = definition(kernel='/k', initrd='/i', cmdline='console=ttyS0', serial_log='/var/log/vm.log')
    assert [(c.tag, c.text) for c in root.find('os')][1:] == [('kernel', '/k'), ('initrd', '/i'),
                                                              ('cmdline', 'console=ttyS0')]
    serial = root.find('devices/serial')
    assert serial.find('log').attrib == {'file': '/var/log/vm.log', 'append': 'off'}
    assert root.find('devices/console/target').get('port') == '0'
