"""The hardened parser and the semantic reconciliation of domain XML."""

import pytest

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml

STORED = """
<domain type='qemu'>
  <name>web</name>
  <uuid>0f0e0d0c-0b0a-4908-8706-050403020100</uuid>
  <memory unit='KiB'>262144</memory>
  <currentMemory unit='KiB'>262144</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/img/web.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'/>
    <controller type='pci' index='0' model='pci-root'/>
    <interface type='user'>
      <mac address='52:54:00:aa:bb:cc'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <serial type='pty'><target type='isa-serial' port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <input type='mouse' bus='ps2'/>
    <memballoon model='virtio'/>
  </devices>
</domain>
"""

DECLARED = """<domain type="qemu"><name>web</name><memory unit="MiB">256</memory><vcpu>1</vcpu>
<os><type arch="x86_64" machine="pc">hvm</type><boot dev="hd"/></os>
<devices>
<disk device="disk" type="file"><driver type="qcow2" name="qemu"/><source file="/img/web.qcow2"/>
<target bus="virtio" dev="vda"/></disk>
<interface type="user"><model type="virtio"/></interface>
<serial type="pty"/>
</devices></domain>"""

ALIASES = {'pc': 'pc-i440fx-7.2'}


def reconcile(declared, stored=STORED):
    return _xml.reconcile(_xml.parse_xml(declared), _xml.parse_xml(stored), ALIASES)


def test_libvirt_defaults_are_not_changes():
    result = reconcile(DECLARED)
    assert result.differences == []
    assert not result.changed


def test_merged_definition_keeps_generated_identity():
    result = reconcile(DECLARED.replace('256</memory>', '512</memory>'))
    assert result.differences == ['/domain/memory: 268435456 -> 536870912 bytes', '/domain/currentMemory: removed']
    merged = result.merged
    assert merged.findtext('uuid') == '0f0e0d0c-0b0a-4908-8706-050403020100'
    assert merged.find('devices/interface/mac').get('address') == '52:54:00:aa:bb:cc'
    assert merged.find('devices/disk/address').get('slot') == '0x04'
    assert len(merged.findall('devices/controller')) == 2
    # The balloon follows the new size: libvirt sets currentMemory = memory.
    assert merged.find('currentMemory') is None


def test_a_value_change_drops_attributes_that_described_the_old_value():
    stored = STORED.replace("<vcpu placement='static'>1</vcpu>", "<vcpu placement='static' current='1'>2</vcpu>")
    result = reconcile(DECLARED.replace('<vcpu>1</vcpu>', '<vcpu>4</vcpu>'), stored)
    assert "/domain/vcpu: '2' -> '4'" in result.differences
    assert result.merged.find('vcpu').get('current') is None


def test_listed_devices_are_complete():
    second = ("<disk type='file' device='disk'><source file='/img/b.qcow2'/><target dev='vdb' bus='virtio'/></disk>"
              "</devices>")
    added = reconcile(DECLARED.replace('</devices>', second))
    assert added.differences == ['/domain/devices/disk[vdb]: added']
    removed = reconcile(DECLARED, STORED.replace('</devices>', second))
    assert removed.differences == ['/domain/devices/disk[vdb]: removed']


def test_an_unmentioned_device_kind_is_removed_unless_libvirt_adds_it():
    graphics = reconcile(DECLARED, STORED.replace('</devices>', "<graphics type='vnc' port='-1'/></devices>"))
    assert graphics.differences == ['/domain/devices/graphics[vnc]: removed']


def test_real_attribute_and_machine_differences():
    result = reconcile(DECLARED.replace('machine="pc"', 'machine="q35"'))
    assert result.differences == ["/domain/os/type/@machine: 'pc-i440fx-7.2' -> 'q35'"]


@pytest.mark.parametrize('text,message', [
    ('', 'is empty'),
    ('<domain>', 'not well-formed'),
    ('<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><domain>&x;</domain>', 'DOCTYPE'),
    ('<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><domain>&b;</domain>', 'DOCTYPE'),
])
def test_hardened_parser_refuses(text, message):
    with pytest.raises(_xml.XMLError, match=message):
        _xml.parse_xml(text)


@pytest.mark.parametrize('xml,expected', [
    ("<memory unit='MiB'>256</memory>", 256 * 2 ** 20),
    ('<memory>1024</memory>', 1024 * 1024),
    ("<memory unit='GB'>1</memory>", 10 ** 9),
    ("<size unit='bytes'>7</size>", 7),
    ('<vcpu>2</vcpu>', None),
    ("<memory unit='parsecs'>1</memory>", None),
])
def test_scaled_bytes(xml, expected):
    assert _xml.scaled_bytes(_xml.parse_xml(xml)) == expected


def test_secrets_are_masked_in_diffs():
    element = _xml.parse_xml("<graphics type='vnc' passwd='hunter2'/>")
    assert 'hunter2' not in _xml.masked_text(element)
    assert element.get('passwd') == 'hunter2'


LIVE = STORED.replace("<domain type='qemu'>", "<domain type='qemu' id='7'>").replace(
    "<source file='/img/web.qcow2'/>",
    "<source file='/img/web.qcow2' index='1'/><backingStore/><alias name='virtio-disk0'/>").replace(
    "<serial type='pty'>", "<serial type='pty'><source path='/dev/pts/3'/><alias name='serial0'/>").replace(
    "<console type='pty'>", "<console type='pty' tty='/dev/pts/3'><source path='/dev/pts/3'/>").replace(
    '</devices>', "</devices><resource><partition>/machine</partition></resource>"
    "<seclabel type='dynamic' model='dac' relabel='yes'><label>+64055:+107</label></seclabel>"
    "<cpu mode='custom' match='exact' check='full'><model>qemu64</model>"
    "<feature policy='require' name='hypervisor'/></cpu>")


def test_a_live_dump_compares_as_its_definition():
    live = _xml.without_runtime_state(_xml.parse_xml(LIVE))
    stored = _xml.parse_xml(STORED.replace('</devices>', "</devices><seclabel type='dynamic' model='dac' "
                                           "relabel='yes'/>"))
    assert _xml.reconcile(live, stored, ALIASES).differences == []
    assert live.get('id') is None and live.find('cpu') is None and not list(live.iter('alias'))


def test_a_definition_is_not_touched():
    stored = _xml.parse_xml(STORED)
    assert _xml.without_runtime_state(stored) is stored
