"""The hardened parser and the semantic reconciliation of domain XML."""

import itertools
import threading

import pytest

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtClient

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


@pytest.fixture(scope='module')
def parser():
    """libvirt's own parser: the in-process test driver (no daemon, no host)."""
    client = LibvirtClient(_xml.NORMALISING_URI)
    yield client
    client.close()


@pytest.fixture
def reconcile(parser):
    def reconcile(declared, stored=STORED):
        element = _xml.parse_xml(declared)
        normalised = _xml.normalised_by_libvirt(element, parser)
        return _xml.reconcile(element, _xml.parse_xml(stored), ALIASES, normalised)
    return reconcile


def test_libvirt_defaults_are_not_changes(reconcile):
    result = reconcile(DECLARED)
    assert result.differences == []
    assert not result.changed


def test_the_definition_is_the_declared_xml_with_the_generated_identifiers(reconcile):
    result = reconcile(DECLARED.replace('256</memory>', '512</memory>'))
    assert result.differences == ['/domain/memory: 268435456 -> 536870912 bytes']
    merged = result.merged
    assert merged.findtext('uuid') == '0f0e0d0c-0b0a-4908-8706-050403020100'
    assert merged.find('devices/interface/mac').get('address') == '52:54:00:aa:bb:cc'
    assert merged.find('devices/disk/address').get('slot') == '0x04'
    # Nothing else of libvirt's is copied in: libvirt fills it in again
    # exactly as `virsh define` of the declared XML would.
    assert merged.find('devices/controller') is None and merged.find('currentMemory') is None
    assert merged.find('vcpu').get('placement') is None


def test_a_device_moved_to_another_bus_gets_a_new_address(reconcile):
    result = reconcile(DECLARED.replace('bus="virtio" dev="vda"', 'bus="sata" dev="vda"'))
    assert result.differences == ["/domain/devices/disk[vda]/target/@bus: 'virtio' -> 'sata'"]
    assert result.merged.find('devices/disk/address') is None
    assert result.merged.find('devices/interface/address').get('slot') == '0x03'


def test_generated_host_interface_names_are_not_the_users(reconcile):
    nic = "<interface type='network'><source network='default'/><target dev='%s'/><model type='virtio'/></interface>"
    stored = STORED.replace('</devices>', (nic % 'vnet3').replace("<target dev='vnet3'/>", '') + '</devices>')
    generated = reconcile(DECLARED.replace('</devices>', nic % 'vnet3' + '</devices>'), stored)
    assert generated.differences == []
    assert generated.merged.find("devices/interface[@type='network']/target") is None
    named = reconcile(DECLARED.replace('</devices>', nic % 'web0' + '</devices>'),
                      stored.replace("<source network='default'/>", "<source network='default'/><target dev='web0'/>"))
    assert named.differences == []
    assert named.merged.find("devices/interface[@type='network']/target").get('dev') == 'web0'


def test_a_value_change_is_defined_as_declared(reconcile):
    stored = STORED.replace("<vcpu placement='static'>1</vcpu>", "<vcpu placement='static' current='1'>2</vcpu>")
    result = reconcile(DECLARED.replace('<vcpu>1</vcpu>', '<vcpu>4</vcpu>'), stored)
    assert "/domain/vcpu: '2' -> '4'" in result.differences
    assert result.merged.find('vcpu').get('current') is None


def test_listed_devices_are_complete(reconcile):
    second = ("<disk type='file' device='disk'><source file='/img/b.qcow2'/><target dev='vdb' bus='virtio'/></disk>"
              "</devices>")
    added = reconcile(DECLARED.replace('</devices>', second))
    assert added.differences == ['/domain/devices/disk[vdb]: added']
    removed = reconcile(DECLARED, STORED.replace('</devices>', second))
    assert removed.differences == ['/domain/devices/disk[vdb]: removed']


def test_an_unmentioned_device_kind_is_removed_unless_libvirt_adds_it(reconcile):
    graphics = reconcile(DECLARED, STORED.replace('</devices>', "<graphics type='vnc' port='-1'/></devices>"))
    assert graphics.differences == ['/domain/devices/graphics[vnc]: removed']


def test_real_attribute_and_machine_differences(reconcile):
    result = reconcile(DECLARED.replace('machine="pc"', 'machine="q35"'))
    assert result.differences == ["/domain/os/type/@machine: 'pc-i440fx-7.2' -> 'q35'"]


def test_a_console_implies_the_serial_port_libvirt_adds(reconcile):
    # virt-install --console pty writes no <serial>: libvirt adds the one the
    # console needs, which is not a device the user removed.
    assert reconcile(DECLARED.replace('<serial type="pty"/>', '<console type="pty"/>')).differences == []


USB_COMPANIONS = """<controller type='usb' index='0' model='ich9-ehci1'/>
<controller type='usb' index='0' model='ich9-uhci1'><master startport='0'/></controller>
<controller type='usb' index='0' model='ich9-uhci2'><master startport='2'/></controller>
</devices>"""


def test_usb_companion_controllers_pair_by_model(reconcile):
    stored = STORED.replace("<controller type='usb' index='0' model='piix3-uhci'/>", USB_COMPANIONS.replace(
        "model='ich9-ehci1'/>", "model='ich9-ehci1'><address type='pci' domain='0x0000' bus='0x00' slot='0x05' "
        "function='0x7'/></controller>").replace('</devices>', ''))
    declared = DECLARED.replace('</devices>', USB_COMPANIONS.replace(
        "<controller type='usb' index='0' model='ich9-uhci2'><master startport='2'/></controller>", ''))
    result = reconcile(declared.replace('256</memory>', '512</memory>'), stored)
    assert result.differences == ['/domain/memory: 268435456 -> 536870912 bytes']
    ehci = result.merged.find("devices/controller[@model='ich9-ehci1']")
    assert ehci.find('master') is None and ehci.find('address').get('function') == '0x7'
    # Reordered, the companions still pair with their own kind.
    reordered = reconcile(DECLARED.replace('</devices>', '\n'.join(reversed(USB_COMPANIONS.splitlines()[:-1]))
                                           + '</devices>'), stored)
    assert reordered.differences == []


def test_a_default_child_libvirt_drops_is_neither_a_change_nor_put_back(reconcile):
    smartcard = ("<smartcard mode='passthrough' type='unix'><source mode='bind' path='/run/card.sock'/>"
                 "<protocol type='raw'/></smartcard></devices>")
    address = "<address type='ccid' controller='0' slot='0'/>"
    stored = STORED.replace('</devices>', smartcard.replace("<protocol type='raw'/>", address))
    result = reconcile(DECLARED.replace('</devices>', smartcard), stored)
    assert result.differences == []
    merged = result.merged.find('devices/smartcard')
    assert [child.tag for child in merged] == ['source', 'protocol', 'address']


def test_memory_with_numa_cells_compares_as_libvirt_stores_it(reconcile):
    numa = ('<cpu><numa><cell id="0" cpus="0" memory="131072"/><cell id="1" cpus="1" memory="131072"/></numa>'
            '</cpu><vcpu>2</vcpu>')
    # virt-install writes maxmemory as <memory>; libvirt stores the cells' sum.
    declared = DECLARED.replace('<vcpu>1</vcpu>', numa).replace('unit="MiB">256', 'unit="MiB">1024')
    stored = STORED.replace("<vcpu placement='static'>1</vcpu>", "<vcpu placement='static'>2</vcpu>").replace(
        '</devices>', "</devices><cpu><numa><cell id='0' cpus='0' memory='131072' unit='KiB'/>"
        "<cell id='1' cpus='1' memory='131072' unit='KiB'/></numa></cpu>")
    assert reconcile(declared, stored).differences == []


def test_a_changed_password_is_detected_but_never_shown(reconcile):
    stored = STORED.replace('</devices>', "<graphics type='vnc' port='-1' autoport='yes' passwd='old-secret'/>"
                            "<video><model type='cirrus'/></video></devices>")
    result = reconcile(DECLARED.replace('</devices>', '<graphics type="vnc" passwd="new-secret"/></devices>'), stored)
    assert result.differences == ["/domain/devices/graphics[vnc]/@passwd: '********' -> '********'"]
    assert 'secret' not in _xml.masked_text(result.merged)


def test_libvirts_parser_refusing_the_xml_is_an_error(parser):
    with pytest.raises(_xml.XMLError, match="libvirt does not accept the XML: .*'lots'"):
        _xml.normalised_by_libvirt(_xml.parse_xml(DECLARED.replace('>256<', '>lots<')), parser)


def test_an_empty_rom_file_is_accepted(reconcile):
    declared = DECLARED.replace('<interface type="user">', '<interface type="user"><rom file=""/>')
    stored = STORED.replace("<model type='virtio'/>", "<model type='virtio'/><rom file=''/>")
    assert reconcile(declared, stored).differences == []


@pytest.mark.parametrize('text,message', [
    ('', 'is empty'),
    ('<domain>', 'not well-formed'),
    ('<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><domain>&x;</domain>', 'DOCTYPE'),
    ('<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><domain>&b;</domain>', 'DOCTYPE'),
])
def test_hardened_parser_refuses(text, message):
    with pytest.raises(_xml.XMLError, match=message):
        _xml.parse_xml(text)


def test_secrets_are_masked_in_diffs():
    element = _xml.parse_xml("<graphics type='vnc' passwd='hunter2'/>")
    assert 'hunter2' not in _xml.masked_text(element)
    assert element.get('passwd') == 'hunter2'


LIVE = STORED.replace("<domain type='qemu'>", "<domain type='qemu' id='7'>").replace(
    "<source file='/img/web.qcow2'/>",
    "<source file='/img/web.qcow2' index='1'/><backingStore/><alias name='virtio-disk0'/>"
    "<mirror type='file' file='/img/copy.qcow2' format='qcow2' job='copy' ready='yes'/>").replace(
    "<serial type='pty'>", "<serial type='pty'><source path='/dev/pts/3'/><alias name='serial0'/>").replace(
    "<console type='pty'>", "<console type='pty' tty='/dev/pts/3'><source path='/dev/pts/3'/>").replace(
    '</devices>', "<channel type='unix'><source mode='bind' path='/var/lib/libvirt/qemu/channel/target/"
    "domain-7-web/org.qemu.guest_agent.0'/><target type='virtio' name='org.qemu.guest_agent.0' "
    "state='connected'/></channel></devices>").replace(
    '</devices>', "</devices><resource><partition>/machine</partition></resource>"
    "<seclabel type='dynamic' model='dac' relabel='yes'><label>+64055:+107</label></seclabel>"
    "<cpu mode='custom' match='exact' check='full'><model>qemu64</model>"
    "<feature policy='require' name='hypervisor'/></cpu>")


def test_a_live_dump_compares_as_its_definition():
    live = _xml.without_runtime_state(_xml.parse_xml(LIVE))
    stored = _xml.parse_xml(STORED.replace('</devices>', "<channel type='unix'><target type='virtio' "
                                           "name='org.qemu.guest_agent.0'/></channel></devices><seclabel "
                                           "type='dynamic' model='dac' relabel='yes'/>"))
    assert _xml.reconcile(live, stored, ALIASES).differences == []
    assert live.find('devices/disk/mirror') is None and live.find('devices/channel/source') is None
    assert live.get('id') is None and live.find('cpu') is None and not list(live.iter('alias'))


def test_a_definition_is_not_touched():
    stored = _xml.parse_xml(STORED)
    assert _xml.without_runtime_state(stored) is stored


def test_threads_normalising_at_once_each_get_their_own_declaration():
    """A batch converges domains in threads, each with its own connection to
    the in-process test driver - whose state all of them share."""
    declarations = [_xml.parse_xml(DECLARED.replace('>web<', '>web%d<' % n).replace('>256<', '>%d<' % (64 + n)))
                    for n in range(8)]
    memories = [[] for declaration in declarations]

    def normalise(index):
        client = LibvirtClient(_xml.NORMALISING_URI)
        try:
            for declaration in itertools.repeat(declarations[index], 25):
                memories[index].append(_xml.normalised_by_libvirt(declaration, client).findtext('memory'))
        finally:
            client.close()
    threads = [threading.Thread(target=normalise, args=(index,)) for index in range(len(declarations))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert memories == [[str((64 + n) * 1024)] * 25 for n in range(len(declarations))]
