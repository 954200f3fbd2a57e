"""PID 1 of one rig host: private mounts, then reap orphans until TERM.

Run by rig.py as ``unshare --net --mount --uts --pid --fork --mount-proc
python3 init.py HOST_DIR HOSTNAME``.  It mounts a tmpfs over /run (hiding
the system daemon's sockets), binds the host's private copies over the
libvirt directories and /etc/hosts, sets the hostname, brings up loopback and
writes HOST_DIR/ready.  Then it reaps every orphan (QEMU processes that
libvirtd hands over included).  On SIGTERM it sends TERM to every process of
its namespace, waits up to 10 s for them to go, and exits - which makes the
kernel kill whatever is left.

Standard library only.
"""

import os
import signal
import subprocess
import sys
import time

BINDS = (
    ('etc', '/etc/libvirt'),
    ('lib', '/var/lib/libvirt'),
    ('cache', '/var/cache/libvirt'),
    ('log', '/var/log/libvirt'),
    ('run', '/run/libvirt'),
    ('hosts', '/etc/hosts'),
)

_stopping = []


def _run(*command):
    subprocess.run(command, check=True)


def _setup(host_dir, hostname):
    _run('mount', '--make-rprivate', '/')
    _run('mount', '-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', '/run')
    for sub in ('libvirt', 'lock'):
        os.makedirs(os.path.join('/run', sub), exist_ok=True)
    for source, target in BINDS:
        _run('mount', '--bind', os.path.join(host_dir, source), target)
    _run('hostname', hostname)
    _run('ip', 'link', 'set', 'lo', 'up')


def _on_term(_signum, _frame):
    _stopping.append(time.monotonic())
    try:
        os.kill(-1, signal.SIGTERM)  # every process of this PID namespace but us
    except ProcessLookupError:
        pass


def _reap_forever():
    while True:
        if _stopping:
            try:
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            except ChildProcessError:
                return  # nothing left
            if time.monotonic() - _stopping[0] > 10:
                return
            time.sleep(0.05)
            continue
        try:
            os.wait()
        except ChildProcessError:
            time.sleep(0.2)  # no child right now; daemons are started later
        except InterruptedError:
            pass


def main():
    host_dir, hostname = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    try:
        _setup(host_dir, hostname)
    except (subprocess.CalledProcessError, OSError) as exc:
        with open(os.path.join(host_dir, 'failed'), 'w') as handle:
            handle.write('%s\n' % exc)
        return 1
    with open(os.path.join(host_dir, 'ready'), 'w') as handle:
        handle.write('%d\n' % os.getpid())
    _reap_forever()
    return 0


if __name__ == '__main__':
    sys.exit(main())
