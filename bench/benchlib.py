"""What the fleet benchmarks share: running ansible-playbook as users run it,
interleaved rounds with medians, diskless domains that run, the tables.

Not a benchmark itself (make bench runs bench/*_bench.py).  Every object a
benchmark makes is named ``lltest-bench-...`` and removed at the end, also on
failure; the benchmarks hold the test session lock (tests/testbed/testbed.py)
like a test session does, so that no concurrent session sweeps them away.
"""

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'testbed'))

import libvirt  # noqa: E402

import ansible_module  # noqa: E402
import testbed  # noqa: E402

URI = testbed.URI
ROUNDS = max(3, int(os.environ.get('BENCH_ROUNDS', '3')))
BIN = os.path.dirname(sys.executable)
PREFIX = testbed.TEST_PREFIX + 'bench-'

SHARED_MACHINE_NOTE = (
    'The machine has 2 cores and is shared with other sessions (tests, guests booting): absolute '
    'times move with their load; the columns of one table are measured interleaved, round by round, '
    'so they see the same load, and their ratios are what to read.')


def _quiet(_context, _error):
    pass


libvirt.registerErrorHandler(_quiet, None)


def progress(message):
    """A time-stamped line on stderr: the tables go to stdout."""
    print('[%s] %s' % (time.strftime('%H:%M:%S'), message), file=sys.stderr, flush=True)


def diskless_xml(name, memory_mib=16):
    """A domain that runs without an OS: no disk, no kernel (the firmware
    finds nothing to boot and idles).  Enough for a no-op converge, which
    only looks at the domain; cheap to keep fifty of them running."""
    return ("<domain type='qemu'><name>%s</name><memory unit='MiB'>%d</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices></devices></domain>" % (name, memory_mib))


def start_diskless(conn, names):
    """Define and start the named diskless domains; seconds it took."""
    started = time.monotonic()
    for name in names:
        conn.defineXML(diskless_xml(name)).create()
    return time.monotonic() - started


def remove_domains(conn, prefix):
    testbed.sweep(conn, prefix)


@contextlib.contextmanager
def session(uri=URI):
    """An open connection, under the shared test-session lock."""
    conn = libvirt.open(uri)
    try:
        with testbed.test_session(conn):
            yield conn
    finally:
        conn.close()


def community_collections_dir():
    """Where the `ansible` package keeps community.libvirt, or None."""
    try:
        import ansible_collections.community.libvirt  # noqa: F401 -- shipped by the ansible package
    except ImportError:
        return None
    collection_dir = list(ansible_collections.community.libvirt.__path__)[0]
    return os.path.dirname(os.path.dirname(os.path.dirname(collection_dir)))


class Ansible:
    """ansible-playbook of this virtualenv, the collection from this tree
    (and community.libvirt from the `ansible` package), the module
    interpreter this Python, temporary files in a private directory."""

    def __init__(self, collections=ansible_module.COLLECTIONS):
        self.tmp = tempfile.mkdtemp(prefix='lltest-bench-ansible-')
        paths = [collections] + [path for path in [community_collections_dir()] if path]
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(paths),
                        ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_NOCOLOR='1',
                        ANSIBLE_LOCAL_TEMP=os.path.join(self.tmp, 'local'),
                        ANSIBLE_REMOTE_TMP=os.path.join(self.tmp, 'remote'),
                        ANSIBLE_HOST_KEY_CHECKING='False', ANSIBLE_RETRY_FILES_ENABLED='False')
        self.env.pop('ANSIBLE_CONFIG', None)
        self._count = 0

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as handle:
            handle.write(text)
        return path

    def playbook(self, tasks, hosts='localhost', pre=''):
        """A play of `tasks` (YAML text, indented four spaces) on `hosts`."""
        self._count += 1
        return self.write('play-%d.yml' % self._count,
                          '- hosts: %s\n  gather_facts: false\n%s  tasks:\n%s' % (hosts, pre, tasks))

    def inventory(self, hosts):
        """An inventory of local hosts: {name: {var: value}}."""
        data = {'all': {'hosts': {name: dict(variables, ansible_connection='local')
                                  for name, variables in hosts.items()}}}
        return self.write('inventory-%d.json' % len(hosts), json.dumps(data))

    def run(self, playbook, extra_vars=None, inventory=None, forks=None, changed=0):
        """Run `playbook`; seconds from the command to its exit.  It must
        succeed with `changed` tasks changed in all (None: not checked)."""
        command = [os.path.join(BIN, 'ansible-playbook'), playbook]
        command += ['-i', inventory] if inventory else ['-i', 'localhost,', '-c', 'local']
        if forks:
            command += ['--forks', str(forks)]
        if extra_vars:
            command += ['-e', '@' + self.write('vars-%d.json' % self._count, json.dumps(extra_vars))]
        started = time.monotonic()
        process = subprocess.run(command, capture_output=True, text=True, env=self.env, check=False)
        elapsed = time.monotonic() - started
        if process.returncode != 0:
            raise RuntimeError('ansible-playbook %s failed:\n%s%s' % (playbook, process.stdout[-4000:], process.stderr))
        if changed is not None:
            counted = sum(int(number) for number in re.findall(r'\bchanged=(\d+)', process.stdout))
            if counted != changed:
                raise RuntimeError('%s: %d tasks changed, expected %d:\n%s' % (
                    playbook, counted, changed, process.stdout[-4000:]))
        return elapsed

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def interleaved(columns, rounds=ROUNDS, before_each=None):
    """Run each of `columns` ([(label, step)]) once per round, in turn, for
    `rounds` rounds; {label: [seconds the step took, ...]}.
    `before_each(label)` runs untimed before each step."""
    samples = {label: [] for label, _step in columns}
    for _round in range(rounds):
        for label, step in columns:
            if before_each:
                before_each(label)
            started = time.monotonic()
            step()
            samples[label].append(time.monotonic() - started)
    return samples


def median(values):
    return statistics.median(values)


def spread(values):
    return '%.2f-%.2f' % (min(values), max(values))


def table(header, rows):
    """A Markdown table: header cells, then rows of cells."""
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' if index == 0 else '---:' for index in range(len(header))) + '|']
    lines += ['| ' + ' | '.join(str(cell) for cell in row) + ' |' for row in rows]
    return '\n'.join(lines)


def verdict(value, target):
    return 'met' if value <= target else 'MISSED by %.2fx' % (value / target)


def has_batch_form():
    """Whether lifecycle.libvirt.domain takes the `domains:` list."""
    path = os.path.join(REPO, 'plugins', 'modules', 'domain.py')
    with open(path) as handle:
        text = handle.read()
    return re.search(r'^\s+domains=dict\(', text, re.MULTILINE) is not None or '\n  domains:\n' in text
