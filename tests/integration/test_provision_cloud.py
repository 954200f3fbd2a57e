"""The provision role building a VM the cloud way: its base image from a URL
(served on 127.0.0.1), its root disk grown from it, a cloud-init seed, the
structured definition (guest agent on), and a per-VM XML override."""

import hashlib
import json
import os
import subprocess
import sys

import libvirt
from lxml import etree

import guest
from conftest import URI
from fileserver import serve

BIN = os.path.dirname(sys.executable)
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: lifecycle.libvirt.provision
      vars:
        provision_uri: %s
        provision_vms: %s
"""


def run_role(tmp_path, vms):
    playbook = tmp_path / 'provision.yml'
    playbook.write_text(PLAYBOOK % (json.dumps(URI), json.dumps(vms)))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, '.build', 'collections'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    process = subprocess.run([os.path.join(BIN, 'ansible-playbook'), str(playbook)], capture_output=True, text=True,
                             env=env, check=False, timeout=600)
    assert process.returncode == 0, process.stdout[-4000:] + process.stderr[-2000:]
    return process.stdout


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
