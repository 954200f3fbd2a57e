"""Growing a running domain: memory ballooned up to its maximum, vCPUs
hot-plugged up to theirs, a new disk and NIC attached - live, on the booted
test guest - and `pending_restart` only for what needs a restart."""

import re
import time

import libvirt
from lxml import etree

from conftest import run_module

ROOM = ("<memory unit='MiB'>384</memory>\n  <currentMemory unit='MiB'>256</currentMemory>\n"
        "  <vcpu current='1'>2</vcpu>")


def with_room(xml, memory_mib=256, vcpus=1):
    """The guest's XML with 384 MiB / 2 vCPUs of maximum, `memory_mib` and `vcpus` in use."""
    return re.sub(r"<memory unit='MiB'>\d+</memory>\s*<vcpu>\d+</vcpu>",
                  ROOM.replace('>256<', '>%d<' % memory_mib).replace("current='1'", "current='%d'" % vcpus), xml)


def live_root(g):
    return etree.fromstring(g.domain().XMLDesc(0))


def extra_disk(conn, g):
    volume = conn.storagePoolLookupByName('default').createXML(
        "<volume><name>%s-extra.raw</name><capacity unit='MiB'>4</capacity>"
        "<target><format type='raw'/></target></volume>" % g.name, 0)
    return ("<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%s'/>"
            "<target dev='vdb' bus='virtio'/></disk>" % volume.path())


def test_memory_vcpus_disk_and_nic_are_added_live(conn, test_guest):
    g = test_guest
    xml = with_room(g.xml)
    assert run_module('domain', xml=xml, state='running')['changed'] is True
    g.wait_ready()

    grown = with_room(g.xml, memory_mib=384, vcpus=2).replace(
        '</devices>', extra_disk(conn, g) + "<interface type='user'><model type='virtio'/></interface></devices>")
    check = run_module('domain', check=True, xml=grown, state='running')
    assert check['changed'] is True and check['pending_restart'] is False
    assert check['actions'] == ['define', 'grow_memory_live', 'grow_vcpus_live', 'hotplug']
    assert live_root(g).find('devices/disk[2]') is None  # check mode attached nothing

    real = run_module('domain', xml=grown, state='running')
    assert real['actions'] == check['actions'] and real['diff'] == check['diff'], real.get('msg')
    assert real['pending_restart'] is False, real
    live = live_root(g)
    assert live.findtext('currentMemory') == str(384 * 1024)
    assert live.find('vcpu').get('current', live.findtext('vcpu')) == '2'  # all of the maximum now
    assert [d.get('dev') for d in live.iterfind('devices/disk/target')] == ['vda', 'vdb']
    assert len(live.findall('devices/interface')) == 1
    stored = etree.fromstring(g.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    # The live NIC is the defined one (same generated MAC): no churn at the next start.
    assert live.find('devices/interface/mac').get('address') == stored.find('devices/interface/mac').get('address')
    assert g.domain().vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_LIVE) == 2

    with g.shell() as shell:
        def guest_sees(command, name):
            deadline = time.monotonic() + 30
            while name not in shell.run(command).split():
                assert time.monotonic() < deadline, '%s: no %s in the guest' % (command, name)
                time.sleep(0.5)
        guest_sees('ls /sys/block', 'vdb')
        guest_sees('ls /sys/devices/system/cpu', 'cpu1')
        guest_sees('ls /sys/class/net', 'eth0')

    again = run_module('domain', xml=grown, state='running')
    assert again['changed'] is False and again['pending_restart'] is False, again


def test_what_cannot_grow_live_is_pending_restart(conn, test_guest):
    g = test_guest
    xml = with_room(g.xml)
    run_module('domain', xml=xml, state='running')
    g.wait_ready()
    # Past the maximum the guest runs with: stored, not applied live.
    bigger = xml.replace("<memory unit='MiB'>384</memory>", "<memory unit='MiB'>512</memory>").replace(
        "<currentMemory unit='MiB'>256</currentMemory>", "<currentMemory unit='MiB'>512</currentMemory>")
    for check in (True, False):
        result = run_module('domain', check=check, xml=bigger, state='running')
        assert result['actions'] == ['define'] and result['pending_restart'] is True, result
    assert live_root(g).findtext('currentMemory') == str(256 * 1024)
    assert g.domain().info()[1] == 384 * 1024  # the running maximum is unchanged


def test_a_paused_guest_is_not_grown_live(conn, test_guest):
    g = test_guest
    xml = with_room(g.xml)
    run_module('domain', xml=xml, state='running')
    g.wait_ready()
    grown = with_room(g.xml, memory_mib=384, vcpus=2)
    for check in (True, False):
        result = run_module('domain', check=check, xml=grown, state='paused')
        assert result['actions'] == ['define', 'suspend'] and result['pending_restart'] is True, result
    assert live_root(g).findtext('currentMemory') == str(256 * 1024)


def test_a_structured_guest_boots_and_grows_live(conn, test_guest, domain_type):
    """The test guest declared with structured options (direct kernel boot,
    its data disk by path, a serial log): it boots; a new disk and NIC, more
    memory and vCPUs in the options reach the running guest."""
    g = test_guest
    params = dict(name=g.name, state='running', virt_type=domain_type, machine='pc', memory='256M',
                  max_memory='384M', vcpus=1, max_vcpus=2, kernel=g.kernel, initrd=g.initrd,
                  cmdline='console=ttyS0 quiet', serial_log=g.serial_log, disks=[dict(path=g.disk_path)])
    first = run_module('domain', **params)
    assert first['changed'] is True and first['actions'] == ['define', 'start'], first
    g.wait_ready()
    assert run_module('domain', **params)['changed'] is False

    extra = conn.storagePoolLookupByName('default').createXML(
        "<volume><name>%s-extra.qcow2</name><capacity unit='MiB'>4</capacity>"
        "<target><format type='qcow2'/></target></volume>" % g.name, 0)
    params.update(memory='384M', vcpus=2, disks=params['disks'] + [dict(pool='default', volume=extra.name())])
    check = run_module('domain', check=True, **params)
    real = run_module('domain', **params)
    for result in (check, real):
        assert result['actions'] == ['define', 'grow_memory_live', 'grow_vcpus_live', 'hotplug'], result
        assert result['pending_restart'] is False
    live = live_root(g)
    assert live.findtext('currentMemory') == str(384 * 1024)
    assert [d.get('dev') for d in live.iterfind('devices/disk/target')] == ['vda', 'vdb']
    assert live.find("devices/disk/source[@volume='%s']" % extra.name()) is not None
    assert run_module('domain', **params)['changed'] is False
