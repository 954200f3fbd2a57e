"""Integration tests: the modules against the real libvirtd, with a guest
that really boots.

Modules run the way Ansible runs them - a separate Python process that reads
its arguments from a JSON file and prints its result - so each test sees
exactly what a playbook would.  Every test object is named with a unique
`lltest-` prefix and removed afterwards, also when the test fails.
"""

import os
import shutil
import sys
import tempfile
import uuid

import libvirt
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'testbed'))

import ansible_module  # noqa: E402
import guest  # noqa: E402
import testbed  # noqa: E402

URI = testbed.URI


def _quiet(_context, _error):
    pass


libvirt.registerErrorHandler(_quiet, None)


def run_module(module, check=False, diff=True, **params):
    """Run lifecycle.libvirt.<module> with `params`; return its result."""
    args = dict(params, _ansible_check_mode=check, _ansible_diff=diff)
    args.setdefault('uri', URI)
    result, output = ansible_module.run_module(ansible_module.OUR_MODULES + module, args)
    assert 'Traceback' not in output, output
    return result


@pytest.fixture(scope='session')
def conn():
    connection = libvirt.open(URI)
    with testbed.test_session(connection):
        yield connection
    connection.close()


@pytest.fixture(scope='session')
def domain_type():
    return testbed.domain_type()


class TestGuest:
    """One test guest: its name, files, XML and a handle on libvirt."""

    def __init__(self, conn, domain_type, workdir, name, noacpi=False):
        self.conn = conn
        self.name = name
        self.workdir = workdir
        self.serial_log = os.path.join(workdir, 'serial.log')
        self.shell_socket = os.path.join(workdir, 'shell.sock')
        self.disk_path = self._create_data_disk()
        self.kernel = str(guest.GUEST_DIR / 'vmlinuz')
        self.initrd = str(guest.GUEST_DIR / 'initrd.img')
        self.xml = guest.domain_xml(name, domain_type=domain_type, data_disk=self.disk_path,
                                    serial_log=self.serial_log, shell_socket=self.shell_socket, noacpi=noacpi)

    def _create_data_disk(self):
        pool = self.conn.storagePoolLookupByName('default')
        volume = pool.createXML(
            "<volume><name>%s-data.qcow2</name><capacity unit='MiB'>16</capacity>"
            "<target><format type='qcow2'/></target></volume>" % self.name, 0)
        return volume.path()

    def domain(self):
        try:
            return self.conn.lookupByName(self.name)
        except libvirt.libvirtError:
            return None

    def state(self):
        """The domain's state in the collection's words, read with libvirt."""
        domain = self.domain()
        if domain is None:
            return 'absent'
        code = domain.state()[0]
        if code == libvirt.VIR_DOMAIN_SHUTOFF:
            return 'saved' if domain.isPersistent() and domain.hasManagedSaveImage(0) else 'defined'
        return {libvirt.VIR_DOMAIN_PAUSED: 'paused'}.get(code, 'running')

    def wait_ready(self, count=1, timeout=90):
        """Wait for the count-th ready marker of the current QEMU process; returns boots."""
        return guest.wait_marker(self.serial_log, count=count, timeout=timeout)

    def shell(self):
        return guest.GuestShell(self.shell_socket)


@pytest.fixture
def make_guest(conn, domain_type):
    """Factory of test guests; everything they leave is removed afterwards."""
    workdirs = []
    prefix = '%s%s-' % (testbed.TEST_PREFIX, uuid.uuid4().hex[:6])

    def make(label='vm', noacpi=False):
        workdir = tempfile.mkdtemp(prefix=prefix)
        os.chmod(workdir, 0o777)  # QEMU (libvirt-qemu) creates the shell socket here
        workdirs.append(workdir)
        return TestGuest(conn, domain_type, workdir, prefix + label, noacpi=noacpi)

    yield make
    testbed.sweep(conn, prefix)
    for workdir in workdirs:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def test_guest(make_guest):
    return make_guest()
