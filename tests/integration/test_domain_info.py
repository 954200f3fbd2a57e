"""domain_info: which storage volume each disk is (libvirt's own lookups) and
whether the guest agent channel is configured and connected."""

import os
import time

from lxml import etree

from conftest import run_module

AGENT_CHANNEL = "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"


def facts_of(name):
    [facts] = run_module('domain_info', name=name)['domains']
    return facts


def test_each_disk_names_its_pool_and_volume_or_none(test_guest, conn):
    g = test_guest
    pool = conn.storagePoolLookupByName('default')
    by_volume = pool.createXML(
        "<volume><name>%s-vol.qcow2</name><capacity unit='MiB'>16</capacity>"
        "<target><format type='qcow2'/></target></volume>" % g.name, 0)
    loose = os.path.join(g.workdir, 'loose.raw')
    with open(loose, 'wb') as handle:
        handle.truncate(1024 * 1024)
    disks = ("<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/>"
             "<source pool='default' volume='%s'/><target dev='vdb' bus='virtio'/></disk>"
             "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
             "<source file='%s'/><target dev='vdc' bus='virtio'/></disk>"
             "<disk type='volume' device='disk'><driver name='qemu' type='raw'/>"
             "<source pool='lltest-no-such-pool' volume='gone.raw'/><target dev='vdd' bus='virtio'/></disk>"
             % (by_volume.name(), loose))
    run_module('domain', xml=g.xml.replace('</devices>', disks + '</devices>'), state='defined')
    by_target = dict((disk['target'], disk) for disk in facts_of(g.name)['disks'])
    data_volume = conn.storageVolLookupByPath(g.disk_path)
    assert (by_target['vda']['pool'], by_target['vda']['volume']) == ('default', data_volume.name())
    assert by_target['vda']['source'] == g.disk_path
    assert (by_target['vdb']['pool'], by_target['vdb']['volume']) == ('default', by_volume.name())
    assert by_target['vdb']['source'] == 'default/%s' % by_volume.name()
    # A file of no pool, and a pool that does not exist: no volume.
    assert (by_target['vdc']['pool'], by_target['vdc']['volume']) == (None, None)
    assert by_target['vdc']['source'] == loose
    assert (by_target['vdd']['pool'], by_target['vdd']['volume']) == (None, None)


def test_guest_agent_configured_and_connected_as_libvirt_reports_it(test_guest):
    g = test_guest
    assert facts_of(run_module('domain', xml=g.xml, state='defined')['name'])['guest_agent'] == dict(
        configured=False, connected=False)
    run_module('domain', xml=g.xml.replace('</devices>', AGENT_CHANNEL + '</devices>'), state='running')
    g.wait_ready()
    assert facts_of(g.name)['guest_agent'] == dict(configured=True, connected=False)
    with g.shell() as shell:
        shell.connect()
        # What the agent does when it starts: open its port (the virtio port
        # of that name), kept open in the background.
        opened = shell.run('for port in /sys/class/virtio-ports/*; do '
                           'if [ "$(cat $port/name)" = org.qemu.guest_agent.0 ]; then '
                           '(sleep 120 < /dev/${port##*/} &) ; echo /dev/${port##*/}; fi; done')
        assert opened.strip().startswith('/dev/vport'), opened
    deadline = time.monotonic() + 30
    while not facts_of(g.name)['guest_agent']['connected'] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert facts_of(g.name)['guest_agent'] == dict(configured=True, connected=True)
    channel = etree.fromstring(g.domain().XMLDesc(0)).find("devices/channel/target[@name='org.qemu.guest_agent.0']")
    assert channel.get('state') == 'connected'
