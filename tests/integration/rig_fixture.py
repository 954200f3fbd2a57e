"""The two-host migration rig as pytest fixtures, and guests that live on it.

Import the fixtures into a test module (``from rig_fixture import rig,
rig_guest_factory``).  The rig is started once per test session module and
always stopped - guests destroyed first, then the hosts - also when a test
fails.  Guests keep their disk in the rig's shared directory (a volume of
the pool ``shared`` on both hosts) or, to test copying storage, in the
source host's private ``default`` pool; their serial log and shell socket
are in the rig's per-host private directory, at the same path on both hosts.
"""

import os
import subprocess
import uuid

import libvirt
import pytest

import guest
import rig as rig_module
import testbed

PRIVATE_DIR = rig_module.PRIVATE_DIR


@pytest.fixture(scope='module')
def rig():
    rig_module.sweep()  # rigs of killed sessions; running sessions keep theirs
    with rig_module.Rig.create() as started:
        yield started


def on_each_host(rig, name, describe):
    """{'a': ..., 'b': ...}: `describe(domain)` of the domain on each host, None where it is not."""
    found = {}
    for host in rig.hosts:
        conn = host.open()
        try:
            try:
                domain = conn.lookupByName(name)
            except libvirt.libvirtError:
                found[host.label] = None
                continue
            found[host.label] = describe(domain)
        finally:
            conn.close()
    return found


def where(rig, name):
    """{'a': state, 'b': state} with state None, 'running' or 'defined'."""
    return on_each_host(rig, name, lambda domain: 'running' if domain.isActive() else 'defined')


class RigGuest:
    """A test guest of the rig; `host` is the host it was started on."""

    def __init__(self, rig, name, local_disk=False):
        self.rig = rig
        self.name = name
        self.local_disk = local_disk
        self.workdir = os.path.join(PRIVATE_DIR, name)
        for host in rig.hosts:
            path = host.outside(self.workdir)
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o777)  # QEMU (libvirt-qemu) creates the shell socket here
        if local_disk:
            conn = rig.a.open()
            try:
                volume = conn.storagePoolLookupByName('default').createXML(
                    "<volume><name>%s.qcow2</name><capacity unit='MiB'>16</capacity>"
                    "<target><format type='qcow2'/></target></volume>" % name, 0)
                self.disk = volume.path()
            finally:
                conn.close()
        else:
            self.disk = os.path.join(rig.shared_dir, name + '.qcow2')
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', self.disk, '16M'], check=True)
            for host in rig.hosts:
                conn = host.open()
                conn.storagePoolLookupByName('shared').refresh(0)
                conn.close()
        self.xml = guest.domain_xml(
            name, domain_type=testbed.domain_type(), data_disk=self.disk,
            serial_log=os.path.join(self.workdir, 'serial.log'),
            shell_socket=os.path.join(self.workdir, 'shell.sock'))

    def define(self, host):
        conn = host.open()
        try:
            return conn.defineXML(self.xml).UUIDString()
        finally:
            conn.close()

    def start(self, host):
        """Define and boot the guest on `host`; wait until it is ready."""
        conn = host.open()
        try:
            conn.defineXML(self.xml).create()
        finally:
            conn.close()
        guest.wait_marker(host.outside(os.path.join(self.workdir, 'serial.log')), timeout=150)

    def where(self):
        return where(self.rig, self.name)

    def run(self, host, command):
        """Run a command in the guest's shell while it runs on `host`."""
        with guest.GuestShell(host.outside(os.path.join(self.workdir, 'shell.sock'))) as shell:
            return shell.run(command, timeout=30)

    def uptime(self, host):
        """Seconds since the guest booted, read through its shell on `host`."""
        return float(self.run(host, 'cat /proc/uptime').split()[0])


@pytest.fixture(scope='module')
def running_guest(rig, rig_guest_factory):
    """One guest of the test module, started on host a."""
    vm = rig_guest_factory('live')
    vm.start(rig.a)
    return vm


@pytest.fixture(scope='module')
def rig_guest_factory(rig):
    """make(label, local_disk=False) -> RigGuest; all removed with the rig."""
    prefix = '%s%s-' % (testbed.TEST_PREFIX, uuid.uuid4().hex[:6])

    def make(label='vm', local_disk=False):
        return RigGuest(rig, prefix + label, local_disk=local_disk)

    return make
