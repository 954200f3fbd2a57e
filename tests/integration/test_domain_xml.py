"""XML idempotency and real changes of a domain's definition."""

import re
import subprocess

import libvirt
from lxml import etree

from conftest import URI, run_module

USER_NIC = "<interface type='user'><model type='virtio'/></interface>"


def macs(g):
    root = etree.fromstring(g.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    return [m.get('address') for m in root.iterfind('devices/interface/mac')]


def define(g, xml, **params):
    return run_module('domain', xml=xml, state=params.pop('state', 'defined'), **params)


def assert_idempotent(g, xml, **params):
    """Check mode and real run both report no change for `xml`."""
    params.setdefault('state', 'defined')
    for check in (True, False):
        result = run_module('domain', check=check, xml=xml, **params)
        assert result['changed'] is False, result['differences']
        assert result['differences'] == []


def test_minimal_hand_written_xml(test_guest):
    g = test_guest
    first = define(g, g.xml)
    assert first['changed'] is True and first['actions'] == ['define']
    assert_idempotent(g, g.xml)


def test_formatting_and_attribute_order_do_not_count(test_guest):
    g = test_guest
    define(g, g.xml)
    # One line, double quotes, attributes reversed, memory in KiB.
    root = etree.fromstring(g.xml)
    for element in root.iter():
        items = list(element.attrib.items())
        element.attrib.clear()
        for key, value in reversed(items):
            element.set(key, value)
    memory = root.find('memory')
    memory.set('unit', 'KiB')
    memory.text = str(256 * 1024)
    reformatted = etree.tostring(root, encoding='unicode').replace('\n', '')
    assert_idempotent(g, reformatted)


def test_interfaces_without_mac_keep_their_generated_mac(test_guest):
    g = test_guest
    xml = g.xml.replace('</devices>', USER_NIC + USER_NIC + '</devices>')
    define(g, xml)
    generated = macs(g)
    assert len(generated) == 2 and all(generated)
    assert_idempotent(g, xml)
    # A real change redefines the domain; the MACs stay what libvirt generated.
    bigger = xml.replace("<memory unit='MiB'>256</memory>", "<memory unit='MiB'>320</memory>")
    changed = define(g, bigger)
    assert changed['changed'] is True and changed['actions'] == ['define']
    assert macs(g) == generated
    assert_idempotent(g, bigger)
    assert macs(g) == generated


def printed_by_virt_install(g, domain_type, *options):
    """`virt-install --print-xml` of the test guest with extra `options`."""
    return subprocess.run(
        ['virt-install', '--connect', URI, '--print-xml', '--name', g.name, '--memory', '256', '--vcpus', '1',
         '--boot', 'kernel=%s,initrd=%s,kernel_args=console=ttyS0' % (g.kernel, g.initrd),
         '--disk', 'path=%s,format=qcow2,bus=virtio' % g.disk_path, '--network', 'user,model=virtio',
         '--graphics', 'none', '--osinfo', 'detect=off,require=off', '--virt-type', domain_type] + list(options),
        capture_output=True, text=True, check=True).stdout


def test_xml_printed_by_virt_install(test_guest, domain_type):
    g = test_guest
    printed = printed_by_virt_install(g, domain_type, '--serial', 'pty')
    assert define(g, printed)['changed'] is True
    assert_idempotent(g, printed)


def test_the_domains_own_dumpxml(test_guest):
    g = test_guest
    define(g, g.xml)
    dumped = g.domain().XMLDesc(0)  # what `virsh dumpxml` prints for a stopped domain
    assert_idempotent(g, dumped)
    inactive = g.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    run_module('domain', name=g.name, state='running')
    g.wait_ready()
    # `virsh dumpxml --inactive` of the running domain, and plain `virsh
    # dumpxml` of it (the live XML, with its runtime state).
    assert_idempotent(g, inactive, state='running')
    assert_idempotent(g, g.domain().XMLDesc(0), state='running')


def test_real_differences_are_changes_with_a_diff(test_guest):
    g = test_guest
    define(g, g.xml)
    changed_xml = (g.xml.replace("<memory unit='MiB'>256</memory>", "<memory unit='MiB'>384</memory>")
                   .replace('<vcpu>1</vcpu>', '<vcpu>2</vcpu>'))
    check = run_module('domain', check=True, xml=changed_xml, state='defined')
    assert check['changed'] is True
    assert g.domain().maxMemory() == 256 * 1024, 'check mode redefined the domain'
    real = define(g, changed_xml)
    assert real['changed'] is True and real['diff'] == check['diff']
    assert sorted(real['differences']) == sorted(check['differences'])
    assert any('/domain/memory' in d for d in real['differences'])
    assert any('/domain/vcpu' in d for d in real['differences'])
    xml_diff = real['diff'][1]
    assert '262144' in xml_diff['before'] and '262144' not in xml_diff['after']
    assert g.domain().maxMemory() == 384 * 1024
    assert g.domain().vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_CONFIG | libvirt.VIR_DOMAIN_VCPU_MAXIMUM) == 2
    assert_idempotent(g, changed_xml)


def test_adding_and_removing_a_device(test_guest, conn):
    g = test_guest
    define(g, g.xml)
    pool = conn.storagePoolLookupByName('default')
    extra = pool.createXML("<volume><name>%s-extra.qcow2</name><capacity unit='MiB'>8</capacity>"
                           "<target><format type='qcow2'/></target></volume>" % g.name, 0)
    disk = ("<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/>"
            "<target dev='vdb' bus='virtio'/></disk>" % extra.path())
    with_disk = g.xml.replace('</devices>', disk + '</devices>')
    added = define(g, with_disk)
    assert added['changed'] is True
    assert any('disk[vdb]: added' in d for d in added['differences'])
    assert 'vdb' in g.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert_idempotent(g, with_disk)
    removed = define(g, g.xml)
    assert removed['changed'] is True
    assert any('disk[vdb]: removed' in d for d in removed['differences'])
    assert 'vdb' not in g.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)


def test_changing_a_running_domain_leaves_it_running_with_a_pending_restart(test_guest):
    g = test_guest
    run_module('domain', xml=g.xml, state='running')
    g.wait_ready()
    bigger = g.xml.replace("<memory unit='MiB'>256</memory>", "<memory unit='MiB'>320</memory>")
    check = run_module('domain', check=True, xml=bigger, state='running')
    real = run_module('domain', xml=bigger, state='running')
    for result in (check, real):
        assert result['changed'] is True and result['actions'] == ['define']
        assert result['pending_restart'] is True and result['state'] == 'running'
    assert real['diff'] == check['diff']
    again = run_module('domain', xml=bigger, state='running')
    assert again['changed'] is False and again['pending_restart'] is True
    with g.shell() as shell:  # the same boot: no restart happened
        assert shell.run('cat /data/boots').strip() == '1'
    assert g.domain().maxMemory() == 256 * 1024  # live
    # Asking for it applies the definition with a power cycle.
    applied = run_module('domain', xml=bigger, state='running', restart_on_change=True, shutdown_timeout=60)
    assert applied['changed'] is True and applied['actions'] == ['shutdown', 'start']
    assert applied['pending_restart'] is False
    assert g.wait_ready() == 2
    assert g.domain().maxMemory() == 320 * 1024
    assert run_module('domain', xml=bigger, state='running', restart_on_change=True)['changed'] is False


def test_domain_info_describes_the_domain(test_guest):
    g = test_guest
    xml = g.xml.replace('</devices>', USER_NIC + '</devices>')
    run_module('domain', xml=xml, state='running')
    info = run_module('domain_info', name=g.name, include_xml=True)
    assert info['changed'] is False
    [facts] = info['domains']
    assert facts['name'] == g.name and facts['state'] == 'running'
    assert facts['persistent'] is True and facts['autostart'] is False and facts['managed_save'] is False
    assert facts['vcpus'] == 1 and facts['memory'] == 256 * 1024 * 1024 and facts['snapshot_count'] == 0
    assert facts['disks'] == [dict(target='vda', device='disk', type='file', source=g.disk_path, format='qcow2',
                                   pool='default', volume=g.conn.storageVolLookupByPath(g.disk_path).name())]
    assert len(facts['interfaces']) == 1 and re.match(r'^52:54:00(:[0-9a-f]{2}){3}$', facts['interfaces'][0]['mac'])
    assert facts['interfaces'][0]['model'] == 'virtio'
    assert facts['xml'].startswith('<domain')
    listed = run_module('domain_info')
    assert g.name in [d['name'] for d in listed['domains']]
    assert 'xml' not in listed['domains'][0]


ICH9_USB = """<controller type='usb' index='0' model='ich9-ehci1'/>
<controller type='usb' index='0' model='ich9-uhci1'><master startport='0'/></controller>
<controller type='usb' index='0' model='ich9-uhci2'><master startport='2'/></controller>
<controller type='usb' index='0' model='ich9-uhci3'><master startport='4'/></controller>"""


def inactive_xml(g):
    return etree.fromstring(g.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def test_usb_companion_controllers_survive_a_redefinition_and_the_guest_boots(test_guest):
    g = test_guest
    xml = g.xml.replace('</devices>', ICH9_USB + '</devices>')
    define(g, xml)
    assert_idempotent(g, xml)
    bigger = xml.replace("<memory unit='MiB'>256</memory>", "<memory unit='MiB'>320</memory>")
    assert define(g, bigger)['changed'] is True
    ehci = inactive_xml(g).find("devices/controller[@model='ich9-ehci1']")
    assert ehci.find('master') is None  # it is the master; a <master> there breaks the guest
    assert run_module('domain', xml=bigger, state='running')['changed'] is True
    g.wait_ready()


def test_a_default_child_libvirt_drops_is_not_put_back(test_guest):
    g = test_guest
    smartcard = ("<smartcard mode='passthrough' type='unix'><source mode='bind' path='%s/card.sock'/>"
                 "<protocol type='raw'/></smartcard>" % g.workdir)
    xml = g.xml.replace('</devices>', smartcard + '</devices>')
    define(g, xml)
    assert inactive_xml(g).find('devices/smartcard/protocol') is None  # libvirt drops the default
    assert_idempotent(g, xml)
    changed = define(g, xml.replace('<vcpu>1</vcpu>', '<vcpu>2</vcpu>'))
    assert changed['changed'] is True and changed['differences'] == ["/domain/vcpu: '1' -> '2'"]
    assert_idempotent(g, xml.replace('<vcpu>1</vcpu>', '<vcpu>2</vcpu>'))


def test_virt_install_console_without_serial(test_guest, domain_type):
    g = test_guest
    printed = printed_by_virt_install(g, domain_type, '--console', 'pty')
    assert '<serial' not in printed
    assert define(g, printed)['changed'] is True
    assert len(inactive_xml(g).findall('devices/serial')) == 1  # the one the console implies
    assert_idempotent(g, printed)
    bigger = re.sub(r'<memory>\d+</memory>', '<memory>327680</memory>', printed)
    changed = define(g, bigger)
    assert changed['changed'] is True and changed['differences'] == ['/domain/memory: 268435456 -> 335544320 bytes']
    assert g.domain().maxMemory() == 327680
    assert_idempotent(g, bigger)


def test_xml_libvirts_parser_accepts_is_accepted(test_guest):
    g = test_guest
    # libvirt 9.0's schema refuses an empty ROM file; `virsh define` accepts it.
    xml = g.xml.replace('</devices>', "<interface type='user'><model type='virtio'/><rom file=''/></interface>"
                        "</devices>")
    assert define(g, xml)['changed'] is True
    assert inactive_xml(g).find('devices/interface/rom').get('file') == ''
    assert_idempotent(g, xml)


def test_an_unsupported_domain_type_is_named(test_guest):
    g = test_guest
    for check in (True, False):
        result = run_module('domain', check=check, xml=g.xml.replace("<domain type='qemu'>", "<domain type='hvf'>")
                            .replace("<domain type='kvm'>", "<domain type='hvf'>"), state='defined')
        assert result['failed'] is True and not result.get('changed')
        assert "does not support virt type 'hvf'" in result['msg'] and 'machine' not in result['msg']
    assert g.domain() is None


def test_a_changed_graphics_password_is_never_shown(test_guest):
    g = test_guest
    vnc = "<graphics type='vnc' passwd='Pw1st4ok'/>"  # QEMU takes at most 8 characters
    assert define(g, g.xml.replace('</devices>', vnc + '</devices>'))['changed'] is True
    second = g.xml.replace('</devices>', vnc.replace('Pw1st4ok', 'Pw2nd4ok') + '</devices>')
    for check in (True, False):
        result = run_module('domain', check=check, xml=second, state='defined')
        assert result['changed'] is True
        assert result['differences'] == ["/domain/devices/graphics[vnc]/@passwd: '********' -> '********'"]
        assert 'Pw1st4ok' not in repr(result) and 'Pw2nd4ok' not in repr(result)
    assert "passwd='Pw2nd4ok'" in g.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE)
    assert_idempotent(g, second)


def test_a_definition_libvirt_refuses_changes_nothing(test_guest):
    g = test_guest
    define(g, g.xml)
    before = g.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    # libvirt's parser accepts it, the QEMU driver refuses it on define.
    cdrom = ("<disk type='file' device='disk'><source file='%s'/><target dev='hdc' bus='ide'/><readonly/></disk>"
             % g.disk_path)
    result = run_module('domain', xml=g.xml.replace('</devices>', cdrom + '</devices>'), state='defined')
    assert result['failed'] is True and result['changed'] is False
    assert 'readonly ide disks are not supported' in result['msg']
    assert g.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == before
