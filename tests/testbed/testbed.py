"""The test bed on this host: what `make setup` prepares after the daemons.

    python tests/testbed/testbed.py prepare   # build the guest, pick KVM or TCG
    python tests/testbed/testbed.py sweep     # remove leftovers of killed runs

`prepare` writes .cache/testbed.json: the domain type the tests and the demo
use.  KVM is used only when a probe proves that the test guest really boots
on it; otherwise TCG (``type='qemu'``).  The result is kept until the guest
or the kernel of the host changes.
"""

import contextlib
import fcntl
import json
import os
import sys
import tempfile
import time

import libvirt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guest  # noqa: E402  (sibling module)

URI = os.environ.get('LIFECYCLE_TEST_URI', 'qemu:///system')
STATE_FILE = guest.REPO_DIR / '.cache' / 'testbed.json'
TEST_PREFIX = 'lltest-'
# The guest boots in about 4 s under TCG; KVM that works is faster still.
KVM_PROBE_SECONDS = 20


def _quiet(_context, _error):
    pass


libvirt.registerErrorHandler(_quiet, None)


def _fingerprint():
    stamp = (guest.GUEST_DIR / 'stamp').read_text() if (guest.GUEST_DIR / 'stamp').exists() else ''
    return '%s|%s' % (os.uname().release, stamp.strip())


def _kvm_boots_the_guest(conn):
    """Boot the guest once with type='kvm'; True if it reaches its marker."""
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        return False, '/dev/kvm is not usable'
    workdir = tempfile.mkdtemp(prefix='lltest-kvmprobe-')
    os.chmod(workdir, 0o777)
    log = os.path.join(workdir, 'serial.log')
    name = TEST_PREFIX + 'kvmprobe'
    try:
        domain = conn.createXML(guest.domain_xml(name, domain_type='kvm', serial_log=log), 0)
    except libvirt.libvirtError as exc:
        return False, 'kvm domain does not start: %s' % exc.get_error_message()
    try:
        started = time.monotonic()
        while time.monotonic() - started < KVM_PROBE_SECONDS:
            try:
                guest.wait_marker(log, timeout=1)
                return True, 'guest booted on KVM in %.1f s' % (time.monotonic() - started)
            except TimeoutError:
                pass
            if domain.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
                # KVM emulation failures pause the guest ("internal error").
                return False, 'guest stopped on KVM (state %s)' % (domain.state(),)
        return False, 'guest did not boot on KVM within %d s' % KVM_PROBE_SECONDS
    finally:
        try:
            domain.destroy()
        except libvirt.libvirtError:
            pass  # it crashed and is gone already


def prepare():
    guest.build()
    if STATE_FILE.exists():
        state = json.loads(STATE_FILE.read_text())
        if state.get('fingerprint') == _fingerprint():
            print('testbed: guest ready, domain type %s (%s)' % (state['domain_type'], state['reason']))
            return
    conn = libvirt.open(URI)
    with test_session(conn):
        kvm, reason = _kvm_boots_the_guest(conn)
    state = dict(domain_type='kvm' if kvm else 'qemu', reason=reason, fingerprint=_fingerprint())
    STATE_FILE.write_text(json.dumps(state, indent=2) + '\n')
    print('testbed: guest ready, domain type %s (%s)' % (state['domain_type'], reason))


def domain_type():
    return json.loads(STATE_FILE.read_text())['domain_type']


# Test sessions (CI, a developer, a second checkout) may run at once against
# the one libvirtd.  Each holds a shared lock while it runs; leftovers of
# killed runs are swept only by someone who finds no session running.
SESSION_LOCK = '/tmp/lifecycle-libvirt-tests.lock'


@contextlib.contextmanager
def test_session(conn):
    """Hold the shared session lock; sweep leftovers first if alone."""
    with open(SESSION_LOCK, 'a') as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            sweep(conn)
        except BlockingIOError:
            pass  # another session runs: its objects are not leftovers
        fcntl.flock(lock, fcntl.LOCK_SH)
        yield


def sweep(conn, prefix=TEST_PREFIX):
    """Destroy and undefine test domains and networks, delete test volumes.

    Other sessions may add and remove objects meanwhile: one that vanishes
    under our hands is simply gone already.
    """
    for domain in conn.listAllDomains(0):
        if domain.name().startswith(prefix):
            _ignore_vanished(_remove_domain, domain)
    for network in conn.listAllNetworks(0):
        if network.name().startswith(prefix):
            _ignore_vanished(_remove_network, network)
    for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        try:
            pool.refresh(0)
        except libvirt.libvirtError:
            pass  # busy with another session's job; its listing is recent enough
        for volume in _ignore_vanished(pool.listAllVolumes, 0) or []:
            if volume.name().startswith(prefix):
                _ignore_vanished(volume.delete, 0)


def _remove_domain(domain):
    persistent = domain.isPersistent()  # a transient one is gone once destroyed
    if domain.isActive():
        domain.destroy()
    if persistent:
        domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                             | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                             | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)


def _remove_network(network):
    persistent = network.isPersistent()
    if network.isActive():
        network.destroy()
    if persistent:
        network.undefine()


def _ignore_vanished(operation, *args):
    try:
        return operation(*args)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_STORAGE_POOL,
                                    libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_NO_NETWORK,
                                    libvirt.VIR_ERR_OPERATION_INVALID):
            return None
        raise


if __name__ == '__main__':
    command = sys.argv[1] if len(sys.argv) > 1 else 'prepare'
    if command == 'prepare':
        prepare()
    elif command == 'sweep':
        with test_session(libvirt.open(URI)):
            pass
    else:
        sys.exit('usage: testbed.py prepare|sweep')
