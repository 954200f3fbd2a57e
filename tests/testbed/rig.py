"""Independent libvirt "hosts" on this machine, for real migrations and
for measuring runs against several hypervisors.

    python tests/testbed/rig.py up [DIR] [--hosts N]  # start the hosts (prints their URIs)
    python tests/testbed/rig.py status [DIR]          # are they up?
    python tests/testbed/rig.py down [DIR]            # destroy their guests, stop them
    python tests/testbed/rig.py sweep                 # remove rigs of killed test sessions

A rig has two hosts, ``a`` and ``b``, unless told otherwise (``--hosts N``,
``Rig(path, hosts=N)``: ``a``, ``b``, ``c``, ...); the number is kept in the
rig's state, so ``down`` and ``status`` find every host of a running rig.

Each host is a set of namespaces made with ``unshare`` (PID, network, mount,
UTS) whose PID 1 is the small reaper ``rig/init.py``.  Inside it a tmpfs
covers /run and private copies of /etc/libvirt, /var/lib/libvirt,
/var/cache/libvirt (with the system's QEMU capability cache, for a fast
start), /var/log/libvirt, /run/libvirt and /etc/hosts are bind-mounted over
the real ones; the rest of the file system is the machine's own, so both
hosts see the test guest's kernel and the shared image directory at the same
paths.  Each host runs its own virtlogd and ``libvirtd --listen`` with a
distinct host UUID, TCP without authentication on its veth address (test
only) and the QEMU migration address set to it.

The hosts share one link: a bridge in host a's network namespace, with a
veth pair to each other host (10.77.0.1/24 on host a, 10.77.0.2/24 on host
b, and so on).  It exists only inside namespaces the rig made, so no
migration traffic leaves them.

From the root namespace a host is reached through its unix socket
(:attr:`Host.uri`); a host's daemon reaches the other one over TCP
(:attr:`Host.tcp_uri`, the URI for peer-to-peer migration).

Per-guest files that must not be shared (a serial console's unix socket:
the source QEMU removes it when it exits) belong in :data:`PRIVATE_DIR`, a
directory that exists on both hosts at the same path but is private to each
(:meth:`Host.outside` gives its path from the root namespace).

Every host has a dir pool ``shared`` on the shared directory
(:attr:`Rig.shared_dir`) and a dir pool ``default`` on its private
/var/lib/libvirt/images.

Python API::

    with Rig.create() as rig:                # or Rig(path).up() / .down()
        conn = libvirt.open(rig.a.uri)
    with Rig.create(hosts=4) as rig:         # rig.hosts: a, b, c, d
        ...

Standard library only, plus libvirt-python for the pools and teardown.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import libvirt

HERE = os.path.dirname(os.path.abspath(__file__))
INIT = os.path.join(HERE, 'rig', 'init.py')
DEFAULT_DIR = os.environ.get('LIFECYCLE_RIG_DIR', '/var/tmp/lifecycle-libvirt-rig')
SUBNET = '10.77.0.'
HOST_LABELS = 'abcdefgh'
DEFAULT_HOSTS = 2
# The link between the hosts: a bridge in host a's network namespace.
BRIDGE = 'llrig-br'
START_TIMEOUT = 30
# Same path on both hosts, different directories (see Host.outside).
PRIVATE_DIR = '/var/lib/libvirt/rig-guests'
# Where Rig.create() makes the rigs of test sessions (and sweep looks).
SWEEP_DIR = '/var/tmp'

CONFIG_FILES = ('libvirt.conf', 'virtlogd.conf', 'qemu-lockd.conf', 'virtlockd.conf')


def _quiet(_context, _error):
    pass


libvirt.registerErrorHandler(_quiet, None)


def _run(*command):
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError('%s failed: %s%s' % (' '.join(command), result.stdout, result.stderr))
    return result.stdout


def _wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError('rig: %s did not happen within %s s' % (what, timeout))
        time.sleep(0.05)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is gone for us.
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def _child_of(pid):
    """The PID (seen from here) of the only child of `pid`, or None."""
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as handle:
            children = handle.read().split()
    except OSError:
        return None
    return int(children[0]) if children else None


class Host:
    """One libvirt host of the rig."""

    def __init__(self, rig, label, index):
        self.rig = rig
        self.label = label
        self.address = SUBNET + str(index + 1)
        self.dir = os.path.join(rig.path, 'host-' + label)
        self.hostname = 'lltest-host-' + label
        # Its end of the veth pair to host a's bridge (host a: the bridge).
        self.interface = BRIDGE if index == 0 else 'llmig-' + label
        self.bridge_port = 'llport-' + label

    @property
    def socket(self):
        return os.path.join(self.dir, 'run', 'libvirt-sock')

    @property
    def uri(self):
        """How the root namespace (the tests, the module) reaches this host."""
        return 'qemu+unix:///system?socket=' + self.socket

    @property
    def tcp_uri(self):
        """How the other host's daemon reaches this one (peer-to-peer migration)."""
        return 'qemu+tcp://%s/system' % self.address

    def outside(self, path):
        """Where a path of this host's private /var/lib/libvirt is, seen from here."""
        prefix = '/var/lib/libvirt/'
        assert path.startswith(prefix), path
        return os.path.join(self.dir, 'lib', path[len(prefix):])

    @property
    def pid(self):
        """PID 1 of the host's namespaces, as seen from the root namespace."""
        return self.rig.state.get(self.label)

    def open(self):
        return libvirt.open(self.uri)

    def is_up(self):
        if not self.pid or not _alive(self.pid):
            return False
        try:
            libvirt.open(self.uri).close()
        except libvirt.libvirtError:
            return False
        return True

    # Set-up ------------------------------------------------------------------

    def _prepare_dirs(self, host_uuid):
        shutil.rmtree(self.dir, ignore_errors=True)
        etc = os.path.join(self.dir, 'etc')
        os.makedirs(etc)
        for name in CONFIG_FILES:
            if os.path.exists(os.path.join('/etc/libvirt', name)):
                shutil.copy2(os.path.join('/etc/libvirt', name), etc)
        with open(os.path.join(etc, 'libvirtd.conf'), 'w') as handle:
            handle.write('listen_tls = 0\nlisten_tcp = 1\nlisten_addr = "%s"\nauth_tcp = "none"\n'
                         'auth_unix_rw = "none"\nhost_uuid = "%s"\n'
                         'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n'
                         % (self.address, host_uuid))
        with open(os.path.join(etc, 'qemu.conf'), 'w') as handle:
            # QEMU runs as root here: post-copy needs userfaultfd, which
            # vm.unprivileged_userfaultfd=0 (the usual default) denies to the
            # libvirt-qemu user, and the rig must not change the machine's
            # sysctls.  Without dynamic ownership the rig never chowns files
            # it shares with the system daemon's guests (the test kernel).
            handle.write('migration_address = "%s"\nmigration_host = "%s"\n'
                         'cgroup_controllers = [ ]\nsecurity_driver = "none"\n'
                         'user = "root"\ngroup = "root"\ndynamic_ownership = 0\nremember_owner = 0\n'
                         % (self.address, self.address))
        lib = os.path.join(self.dir, 'lib')
        for sub, mode in (('images', 0o711), ('boot', 0o711), ('qemu', 0o750), ('rig-guests', 0o1777)):
            os.makedirs(os.path.join(lib, sub), mode)
            os.chmod(os.path.join(lib, sub), mode)
        qemu_user = _qemu_user()
        if qemu_user:
            os.chown(os.path.join(lib, 'qemu'), *qemu_user)
        capabilities = os.path.join(self.dir, 'cache', 'qemu', 'capabilities')
        if os.path.isdir('/var/cache/libvirt/qemu/capabilities'):
            shutil.copytree('/var/cache/libvirt/qemu/capabilities', capabilities)
        else:
            os.makedirs(capabilities)
        os.makedirs(os.path.join(self.dir, 'log', 'qemu'))
        os.makedirs(os.path.join(self.dir, 'run'))
        with open(os.path.join(self.dir, 'hosts'), 'w') as handle:
            handle.write('127.0.0.1 localhost\n%s\n' % '\n'.join(
                '%s %s' % (host.address, host.hostname) for host in self.rig.hosts))

    def start_namespaces(self):
        self._prepare_dirs(str(uuid.uuid4()))
        log = open(os.path.join(self.dir, 'init.log'), 'w')
        process = subprocess.Popen(
            ['unshare', '--net', '--mount', '--uts', '--pid', '--fork', '--mount-proc',
             '--propagation', 'private', sys.executable, INIT, self.dir, self.hostname],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        _wait(lambda: _child_of(process.pid) is not None, START_TIMEOUT, 'namespaces of host ' + self.label)
        self.rig.state[self.label] = _child_of(process.pid)
        self.rig.state['unshare_' + self.label] = process.pid
        _wait(lambda: os.path.exists(os.path.join(self.dir, 'ready'))
              or os.path.exists(os.path.join(self.dir, 'failed')), START_TIMEOUT, 'set-up of host ' + self.label)
        if os.path.exists(os.path.join(self.dir, 'failed')):
            with open(os.path.join(self.dir, 'failed')) as handle:
                raise RuntimeError('rig host %s: %s' % (self.label, handle.read().strip()))

    def nsenter(self, *command):
        return _run('nsenter', '--target', str(self.pid), '--mount', '--uts', '--net', '--pid', *command)

    def configure_network(self):
        self.nsenter('ip', 'addr', 'add', self.address + '/24', 'dev', self.interface)
        self.nsenter('ip', 'link', 'set', self.interface, 'up')

    def start_daemons(self):
        """Start virtlogd and libvirtd (also to bring a stopped daemon back)."""
        if not os.path.exists(os.path.join(self.dir, 'run', 'virtlogd-sock')):
            self.nsenter('virtlogd', '-d')
        self.nsenter('libvirtd', '-d', '--listen')
        _wait(self._answers, START_TIMEOUT, 'libvirtd of host ' + self.label)

    def _answers(self):
        try:
            libvirt.open(self.uri).close()
            return True
        except libvirt.libvirtError:
            return False

    def stop_libvirtd(self, signal_name='TERM'):
        """Stop this host's libvirtd (its guests keep running), to test
        failures; ``signal_name='KILL'`` kills it as a crash would."""
        assert signal_name in ('TERM', 'KILL'), signal_name
        self.nsenter('sh', '-c', 'kill -%s "$(cat /run/libvirtd.pid)"' % signal_name)
        _wait(lambda: not os.path.exists(self.socket) or not self._answers(), START_TIMEOUT,
              'stop of libvirtd on host ' + self.label)

    def define_pools(self):
        conn = self.open()
        try:
            for name, path in (('default', '/var/lib/libvirt/images'), ('shared', self.rig.shared_dir)):
                pool = conn.storagePoolDefineXML(
                    "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>" % (name, path), 0)
                pool.create(0)
                pool.setAutostart(1)
        finally:
            conn.close()

    # Tear-down ---------------------------------------------------------------

    def destroy_guests(self):
        """Destroy every guest (libvirt gives the files back to their owner)."""
        try:
            conn = self.open()
        except libvirt.libvirtError:
            return
        try:
            for domain in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
                try:
                    domain.destroy()
                except libvirt.libvirtError:
                    pass
        finally:
            conn.close()

    def stop(self):
        pid = self.pid
        if pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)
            _wait(lambda: not _alive(pid), 20, 'stop of host ' + self.label)
        unshare = self.rig.state.get('unshare_' + self.label)
        if unshare:
            try:
                os.waitpid(unshare, os.WNOHANG)  # reap it when we started it
            except ChildProcessError:
                pass


def _qemu_user():
    import pwd
    try:
        entry = pwd.getpwnam('libvirt-qemu')
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


class Rig:
    """The hosts `a`, `b` (and `c`, ... when asked for more), their link and
    the shared image directory."""

    def __init__(self, path=DEFAULT_DIR, hosts=None):
        """`hosts`: how many; by default as many as the rig at `path` has
        (a running one), else DEFAULT_HOSTS."""
        self.path = os.path.abspath(path)
        self.state_file = os.path.join(self.path, 'state.json')
        self.shared_dir = os.path.join(self.path, 'shared')
        self.state = {}
        if os.path.exists(self.state_file):
            with open(self.state_file) as handle:
                self.state = json.load(handle)
        self.owner = self.state.get('owner')
        count = hosts or len(self.state.get('hosts', '')) or DEFAULT_HOSTS
        if not 2 <= count <= len(HOST_LABELS):
            raise ValueError('a rig has 2 to %d hosts, not %s' % (len(HOST_LABELS), count))
        self.hosts = [Host(self, label, index) for index, label in enumerate(HOST_LABELS[:count])]
        self.a, self.b = self.hosts[:2]

    @classmethod
    def create(cls, prefix='lltest-rig-', hosts=None):
        """A rig in a new temporary directory, owned by this process (a test
        session): `sweep` removes it once this process is gone."""
        rig = cls(tempfile.mkdtemp(prefix=prefix, dir=SWEEP_DIR), hosts=hosts)
        rig.owner = os.getpid()
        return rig

    @property
    def labels(self):
        return ''.join(host.label for host in self.hosts)

    def _save(self):
        with open(self.state_file, 'w') as handle:
            json.dump(self.state, handle)

    def is_up(self):
        return self.state.get('hosts', self.labels) == self.labels and all(host.is_up() for host in self.hosts)

    def up(self):
        if self.state and self.is_up():
            return self
        self._stop_hosts(self._started_hosts())
        os.makedirs(self.shared_dir, exist_ok=True)
        # QEMU must reach the shared directory whatever user it runs as.
        os.chmod(self.path, 0o755)
        os.chmod(self.shared_dir, 0o1777)
        self.state = {}
        try:
            self.state.update(owner=self.owner, hosts=self.labels)
            for host in self.hosts:
                host.start_namespaces()
                self._save()
            self._link()
            for host in self.hosts:
                host.configure_network()
                host.start_daemons()
                host.define_pools()
        except BaseException:
            self.down()
            raise
        return self

    def _link(self):
        """A bridge in host a's network namespace and a veth pair from it to
        each other host: one segment, created inside the rig's namespaces."""
        self.a.nsenter('ip', 'link', 'add', BRIDGE, 'type', 'bridge')
        for host in self.hosts[1:]:
            _run('ip', 'link', 'add', host.bridge_port, 'netns', str(self.a.pid), 'type', 'veth',
                 'peer', 'name', host.interface, 'netns', str(host.pid))
            self.a.nsenter('ip', 'link', 'set', host.bridge_port, 'master', BRIDGE, 'up')

    def _started_hosts(self):
        """The hosts the state file names (a rig started with another number
        of hosts is stopped whole)."""
        labels = self.state.get('hosts', self.labels)
        return self.hosts if labels == self.labels else [Host(self, label, index) for index, label in enumerate(labels)]

    def _stop_hosts(self, hosts):
        for host in hosts:
            if host.pid and _alive(host.pid):
                host.destroy_guests()
        for host in hosts:
            host.stop()
        for host in hosts:
            shutil.rmtree(host.dir, ignore_errors=True)

    def down(self):
        """Destroy the hosts' guests, stop the hosts, remove their directories."""
        self._stop_hosts(self._started_hosts())
        self.state = {}
        if os.path.exists(self.state_file):
            os.unlink(self.state_file)

    def remove(self):
        """down(), then remove the rig's directory with the shared images."""
        self.down()
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc_info):
        self.remove()

    def describe(self):
        return dict(path=self.path, shared_dir=self.shared_dir, hosts={
            host.label: dict(hostname=host.hostname, address=host.address, uri=host.uri,
                             tcp_uri=host.tcp_uri, pid=host.pid, up=host.is_up())
            for host in self.hosts})


def sweep():
    """Remove the rigs of test sessions that were killed before their teardown."""
    for entry in sorted(os.listdir(SWEEP_DIR)):
        path = os.path.join(SWEEP_DIR, entry)
        if not entry.startswith('lltest-') or not os.path.exists(os.path.join(path, 'state.json')):
            continue
        rig = Rig(path)
        owner = rig.state.get('owner')
        if owner and not _alive(owner):
            rig.remove()
            print('rig: removed the leftover rig %s' % path)


def main(argv):
    hosts = None
    if '--hosts' in argv:
        at = argv.index('--hosts')
        hosts = int(argv[at + 1])
        argv = argv[:at] + argv[at + 2:]
    command = argv[1] if len(argv) > 1 else 'status'
    rig = Rig(argv[2] if len(argv) > 2 else DEFAULT_DIR, hosts=hosts)
    if command == 'up':
        started = time.monotonic()
        rig.up()
        print(json.dumps(dict(rig.describe(), seconds=round(time.monotonic() - started, 2)), indent=2))
    elif command == 'down':
        started = time.monotonic()
        rig.down()
        print('rig down in %.2f s' % (time.monotonic() - started))
    elif command == 'sweep':
        sweep()
    elif command == 'status':
        print(json.dumps(rig.describe(), indent=2))
        return 0 if rig.state and rig.is_up() else 3
    else:
        print('usage: rig.py up|down|status [DIR] [--hosts N] | sweep', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
