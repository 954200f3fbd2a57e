"""The provision role building a VM the cloud way: its base image from a URL
(served on 127.0.0.1), its root disk grown from it, a cloud-init seed the
guest reads at boot, the structured definition (guest agent on), and a per-VM
XML override; check mode from scratch, before the base image is there."""

import hashlib
import os
import subprocess

import libvirt
from lxml import etree

import guest
from conftest import run_module
from fileserver import serve
from provision_helpers import run_role, tiny_guest_vm


def test_provision_from_a_url_with_a_seed_and_an_xml_override(conn, make_guest, domain_type, tmp_path):
    booted, overridden = make_guest('cloud'), make_guest('xml')
    prefix = booted.name[:-len('cloud')]
    image = tmp_path / 'base.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(image), '32M'], check=True)
    checksum = 'sha256:' + hashlib.sha256(image.read_bytes()).hexdigest()
    requests = []
    httpd = serve(str(tmp_path), requests)
    try:
        base = prefix + 'base.qcow2'
        vms = [dict(name=booted.name, memory_mib=256, domain_type=domain_type, base_volume=base,
                    base_url='http://127.0.0.1:%d/base.qcow2' % httpd.server_address[1], base_checksum=checksum,
                    root_capacity='64M', kernel=booted.kernel, initrd=booted.initrd, cmdline='console=ttyS0 quiet',
                    serial_log=booted.serial_log, ready_marker=guest.READY_MARKER,
                    cloud_init=dict(user_data={'hostname': 'web01'}, meta_data={'local-hostname': 'web01'})),
               dict(name=overridden.name, base_volume=base, xml=overridden.xml, state='defined')]
        run_role(tmp_path, vms)
        second = run_role(tmp_path, vms)
        assert 'changed=0' in second and 'failed=0' in second, second[-3000:]
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert requests == ['/base.qcow2']  # downloaded once, not by the second run

    pool = conn.storagePoolLookupByName('default')
    base_volume = pool.storageVolLookupByName(base)
    with open(base_volume.path(), 'rb') as handle:
        assert 'sha256:' + hashlib.sha256(handle.read()).hexdigest() == checksum
    root = etree.fromstring(pool.storageVolLookupByName(booted.name + '-root.qcow2').XMLDesc(0))
    assert root.findtext('backingStore/path') == base_volume.path()
    assert int(root.findtext('capacity')) == 64 * 1024 * 1024  # grown from the 32 MiB image

    domain = conn.lookupByName(booted.name)
    assert domain.isActive() and guest.wait_marker(booted.serial_log, timeout=5) >= 1
    stored = etree.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    disks = [(d.get('device'), d.find('source').get('volume')) for d in stored.iterfind('devices/disk')]
    assert disks == [('disk', booted.name + '-root.qcow2'), ('cdrom', booted.name + '-seed.iso')]
    assert stored.find("devices/channel/target[@name='org.qemu.guest_agent.0']") is not None
    assert pool.storageVolLookupByName(booted.name + '-seed.iso').info()[1] > 0

    other = conn.lookupByName(overridden.name)
    assert not other.isActive()
    override = etree.fromstring(other.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert override.find('devices/disk/source').get('file') == overridden.disk_path  # its own XML, not the options
    assert override.find('devices/channel') is None


def seed_line(meta_data):
    return 'instance-id=%(instance-id)s local-hostname=%(local-hostname)s' % meta_data


def test_the_guest_reads_the_seed_the_play_declared_and_a_new_seed_after_a_restart(conn, make_guest, domain_type,
                                                                                   tmp_path):
    vm = make_guest('seed')
    first = {'instance-id': 'iid-first', 'local-hostname': 'seeded-one'}
    # The guest's kernel has no SATA driver: its seed CD-ROM goes on IDE.
    declared = tiny_guest_vm(vm, domain_type, ready_marker=guest.READY_MARKER, seed_bus='ide',
                             cloud_init=dict(user_data={'hostname': 'seeded-one'}, meta_data=first))
    run_role(tmp_path, [declared])
    # The role waited for the ready marker, which the guest prints after the seed line.
    assert guest.seed_reports(vm.serial_log) == [seed_line(first)]
    stored = etree.fromstring(conn.lookupByName(vm.name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert stored.find("devices/disk[@device='cdrom']/target").attrib == {'dev': 'hda', 'bus': 'ide'}
    again = run_role(tmp_path, [declared])
    assert 'changed=0' in again and 'failed=0' in again, again[-3000:]

    # New content: cloud-init reads a seed at boot, so the volume says a reboot is needed. A running
    # domain keeps the old seed open: stop it first.
    second = {'instance-id': 'iid-second', 'local-hostname': 'seeded-two'}
    assert run_module('domain', name=vm.name, state='defined')['changed'] is True
    seed_volume = dict(pool='default', name=vm.name + '-seed.iso',
                       cloud_init=dict(user_data={'hostname': 'seeded-two'}, meta_data=second))
    seed_path = conn.storagePoolLookupByName('default').storageVolLookupByName(seed_volume['name']).path()
    with open(seed_path, 'rb') as handle:
        first_seed = handle.read()
    predicted = run_module('volume', check=True, **seed_volume)
    assert predicted['changed'] is True and predicted['reboot_required'] is True
    with open(seed_path, 'rb') as handle:
        assert handle.read() == first_seed  # check mode changed nothing
    replaced = run_module('volume', **seed_volume)
    assert replaced['changed'] is True and replaced['reboot_required'] is True, replaced
    assert 'reboot the domains using it' in str(replaced['warnings'])
    assert run_module('volume', **seed_volume)['changed'] is False

    # Started again, the guest prints the new values (the log starts empty with the new QEMU process).
    run_role(tmp_path, [dict(declared, cloud_init=seed_volume['cloud_init'])])
    assert guest.seed_reports(vm.serial_log) == [seed_line(second)]
    # A reboot of the guest alone reads the seed again: the same values.
    assert run_module('domain', name=vm.name, state='restarted')['changed'] is True
    vm.wait_ready(count=2)
    assert guest.seed_reports(vm.serial_log) == [seed_line(second)] * 2


def test_without_a_seed_the_guest_says_so(make_guest, domain_type, tmp_path):
    vm = make_guest('noseed')
    run_role(tmp_path, [tiny_guest_vm(vm, domain_type, ready_marker=guest.READY_MARKER)])
    assert guest.seed_reports(vm.serial_log) == ['none']


def test_check_mode_from_scratch_predicts_the_download_and_creates_nothing(conn, make_guest, domain_type, tmp_path):
    fresh = make_guest('fresh')
    prefix = fresh.name[:-len('fresh')]
    image = tmp_path / 'base.qcow2'
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', str(image), '32M'], check=True)
    checksum = 'sha256:' + hashlib.sha256(image.read_bytes()).hexdigest()
    base = prefix + 'base.qcow2'
    pool = conn.storagePoolLookupByName('default')
    pool_dir = etree.fromstring(pool.XMLDesc(0)).findtext('target/path')
    volumes_before = sorted(name for name in pool.listVolumes() if name.startswith(prefix))  # the guest's own disk
    files_before = sorted(name for name in os.listdir(pool_dir) if prefix in name)
    requests = []
    httpd = serve(str(tmp_path), requests)
    try:
        vm = tiny_guest_vm(fresh, domain_type, base_volume=base, root_capacity='64M',
                           base_url='http://127.0.0.1:%d/base.qcow2' % httpd.server_address[1], base_checksum=checksum,
                           data_disks=[dict(name='logs', capacity='16M')],
                           cloud_init=dict(user_data={'hostname': 'web01'}, meta_data={'local-hostname': 'web01'}))
        output = run_role(tmp_path, [vm], check=True)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert 'failed=0' in output and 'changed=0' not in output, output[-3000:]
    assert 'VM %s would be provisioned once its base image %s is downloaded' % (fresh.name, base) in output, output
    assert requests == ['/base.qcow2']  # fetched to verify the URL and checksum, not stored

    assert fresh.name not in [domain.name() for domain in conn.listAllDomains(0)]
    pool.refresh(0)
    assert sorted(name for name in pool.listVolumes() if name.startswith(prefix)) == volumes_before
    assert sorted(name for name in os.listdir(pool_dir) if prefix in name) == files_before
    assert not os.path.exists(fresh.serial_log)
