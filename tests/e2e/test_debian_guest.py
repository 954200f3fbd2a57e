"""A real Debian 12 cloud image (tests/testbed/debian_image.py), provisioned
by the provision role from a URL served on 127.0.0.1, with its root disk
grown from the image, a NIC on a NAT network the same play creates and a
cloud-init seed naming the host and a user with an SSH key.  The test logs
in with that key (the host key checked against the one cloud-init printed
on the serial console) and asks the guest agent too: cloud-init applied the
seed.  Check mode and a second run change nothing: not the objects, not
the definition, and the image is not downloaded again."""

import base64
import json
import os
import random
import re
import subprocess
import sys
import time

import libvirt
import libvirt_qemu

import ansible_module
import debian_image
import testbed
from fileserver import serve

BIN = os.path.dirname(sys.executable)
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
HOSTNAME = 'e2e-debian'
USER = 'lltest'
# Under TCG on a busy 2-core machine the first boot takes minutes.
BOOT_TIMEOUT = 1500
CLOUD_INIT_DONE = r'Cloud-init v\. \S+ finished at'
PLAYBOOK = """
- name: A Debian VM from a cloud image, reachable over SSH
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: The NAT network with DHCP it is plugged into
      lifecycle.libvirt.network:
        uri: %(uri)s
        name: %(network)s
        bridge: %(bridge)s
        forward_mode: nat
        ipv4:
          address: %(gateway)s/24
          dhcp_ranges: [{start: %(dhcp_start)s, end: %(dhcp_end)s}]
        state: active
    - name: The VM
      ansible.builtin.include_role:
        name: lifecycle.libvirt.provision
      vars:
        provision_uri: %(uri)s
        provision_wait_timeout: %(timeout)d
        provision_vms: %(vms)s
"""


def run_play(playbook, check=False):
    """ansible-playbook `playbook`; returns (the recap's changed count, seconds)."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, '.build', 'collections'),
               ANSIBLE_NOCOLOR='1', ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    started = time.monotonic()
    process = subprocess.run([os.path.join(BIN, 'ansible-playbook'), str(playbook)] + (['--check'] if check else []),
                             capture_output=True, text=True, env=env, check=False, timeout=BOOT_TIMEOUT + 600)
    assert process.returncode == 0, process.stdout[-6000:] + process.stderr[-2000:]
    recap = re.search(r'localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0', process.stdout)
    assert recap, process.stdout[-3000:]
    return int(recap.group(1)), time.monotonic() - started


def objects_named(conn, prefix):
    """Names of the domains, networks and volumes with `prefix` libvirt knows."""
    pool = conn.storagePoolLookupByName('default')
    pool.refresh(0)
    names = [domain.name() for domain in conn.listAllDomains(0)] + [net.name() for net in conn.listAllNetworks(0)]
    names += [volume.name() for volume in pool.listAllVolumes(0)]
    return sorted(name for name in names if name.startswith(prefix))


def ssh(key, known_hosts, address, command):
    """Run `command` on the guest as USER, logging in with `key` only."""
    return subprocess.run(
        ['ssh', '-i', str(key), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'PasswordAuthentication=no',
         '-o', 'StrictHostKeyChecking=yes', '-o', 'UserKnownHostsFile=%s' % known_hosts, '-o', 'ConnectTimeout=20',
         '%s@%s' % (USER, address), command], capture_output=True, text=True, check=False, timeout=120)


def agent_command(domain, execute, **arguments):
    """One QEMU guest agent command through libvirt; its `return` value."""
    reply = libvirt_qemu.qemuAgentCommand(domain, json.dumps(dict(execute=execute, arguments=arguments)), 60, 0)
    return json.loads(reply)['return']


def agent_read_file(domain, path):
    handle = agent_command(domain, 'guest-file-open', path=path, mode='r')
    try:
        return base64.b64decode(agent_command(domain, 'guest-file-read', handle=handle, count=65536)['buf-b64'])
    finally:
        agent_command(domain, 'guest-file-close', handle=handle)


def test_debian_cloud_image_provisioned_and_reachable(conn, prefix, tmp_path):
    started = time.monotonic()
    image = debian_image.build()  # `make e2e` built it already; this reads the cache
    key = tmp_path / 'id_ed25519'
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'lltest-e2e', '-f', str(key)], check=True)
    public_key = (tmp_path / 'id_ed25519.pub').read_text().strip()

    third = random.randint(10, 99)  # test_network's networks use 100-250
    name = prefix + 'debian'
    serial_log = tmp_path / 'serial.log'
    requests = []
    httpd = serve(os.path.dirname(image['path']), requests)
    instance_id = 'iid-' + prefix.rstrip('-')
    vm = dict(
        name=name, memory_mib=1024, vcpus=1, domain_type=testbed.domain_type(),
        base_volume=prefix + 'debian-12.qcow2',
        base_url='http://127.0.0.1:%d/%s' % (httpd.server_address[1], os.path.basename(image['path'])),
        base_checksum='sha256:' + image['sha256'], root_capacity='4G', network=prefix + 'net',
        serial_log=str(serial_log), ready_marker=CLOUD_INIT_DONE,
        cloud_init=dict(
            meta_data={'instance-id': instance_id, 'local-hostname': HOSTNAME},
            user_data={'hostname': HOSTNAME, 'ssh_pwauth': False, 'ssh_genkeytypes': ['ed25519'],
                       'users': [{'name': USER, 'shell': '/bin/bash', 'sudo': 'ALL=(ALL) NOPASSWD:ALL',
                                  'ssh_authorized_keys': [public_key]}]}))
    playbook = tmp_path / 'provision.yml'
    playbook.write_text(PLAYBOOK % dict(
        uri=json.dumps(testbed.URI), network=vm['network'], bridge='lltest%se' % prefix[len('lltest-'):-1],
        gateway='172.30.%d.1' % third, dhcp_start='172.30.%d.100' % third, dhcp_end='172.30.%d.199' % third,
        timeout=BOOT_TIMEOUT, vms=json.dumps([vm])))
    timings = {}
    try:
        changed, timings['first run (download, define, boot to cloud-init done)'] = run_play(playbook)
        assert changed > 0
        made = objects_named(conn, prefix)
        assert made == sorted([name, vm['network'], vm['base_volume'], name + '-root.qcow2', name + '-seed.iso'])
        definition = conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        predicted, timings['check mode run'] = run_play(playbook, check=True)
        assert predicted == 0
        unchanged, timings['second run'] = run_play(playbook)
        assert unchanged == 0
        assert objects_named(conn, prefix) == made
        assert conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == definition
        assert requests == ['/' + os.path.basename(image['path'])]  # downloaded once
    finally:
        httpd.shutdown()
        httpd.server_close()

    console = serial_log.read_text(errors='replace')
    guest_uptime = float(re.search(CLOUD_INIT_DONE + r'.*Up ([\d.]+) seconds', console).group(1))
    # cloud-init printed the host keys it generated: the SSH login checks the one it gets against them.
    host_keys = re.search(r'-----BEGIN SSH HOST KEY KEYS-----\s*(.*?)\s*-----END SSH HOST KEY KEYS-----',
                          console, re.S).group(1).split('\n')
    info, _output = ansible_module.run_module(ansible_module.OUR_MODULES + 'domain_info', dict(
        uri=testbed.URI, name=name, wait_for_address=True, address_timeout=300))
    assert info.get('failed') is not True, info
    address = info['domains'][0]['interfaces'][0]['addresses'][0]['address']
    known_hosts = tmp_path / 'known_hosts'
    known_hosts.write_text(''.join('%s %s\n' % (address, ' '.join(line.split()[:2])) for line in host_keys
                                   if line.strip()))

    login = ssh(key, known_hosts, address, 'hostname; cat /var/lib/cloud/data/instance-id; cat ~/.ssh/authorized_keys;'
                ' findmnt --bytes --noheadings --output SIZE /; sudo -n cloud-init status')
    assert login.returncode == 0, login.stderr
    hostname, seen_instance_id, authorized_key, root_size, status = login.stdout.strip().split('\n')
    assert hostname == HOSTNAME
    assert seen_instance_id == instance_id
    assert authorized_key == public_key
    assert int(root_size) > 3 * 2 ** 30  # the 2 GiB image's root grown to fill the 4 GiB disk
    assert status == 'status: done'

    # The guest agent (the role's channel, Debian's qemu-guest-agent) says the same.
    domain = conn.lookupByName(name)
    assert agent_command(domain, 'guest-get-host-name')['host-name'] == HOSTNAME
    keys = agent_read_file(domain, '/home/%s/.ssh/authorized_keys' % USER).decode()
    assert keys.strip() == public_key
    assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING

    timings['boot to cloud-init done (guest uptime)'] = guest_uptime
    timings['whole test'] = time.monotonic() - started
    print('\nDebian image: %s, built in %s s (cached: %s)' % (image['path'], image['build_seconds'], image['cached']))
    for what, seconds in timings.items():
        print('  %-55s %7.1f s' % (what, seconds))
