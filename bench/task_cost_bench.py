"""Benchmark (not a test): where the time of one no-op task goes.

    .build/bench-venv/bin/python bench/task_cost_bench.py      (make bench)

A running diskless domain, nothing to change.  Ansible runs a module as an
AnsiballZ file: a Python process that unpacks the module and its
module_utils into a zip and imports them from there - zipimport writes no
.pyc, so every run compiles them from source.  The files measured here are
the ones ansible itself wrote (ANSIBLE_KEEP_REMOTE_FILES), run again as is.

Tables:

1. The module process, as Ansible runs it: ansible.builtin.ping (the
   floor), lifecycle.libvirt.domain with `name` only and with `xml`, and
   lifecycle.libvirt.volume on an existing volume - each before and after
   the lazy imports (the collection at the parent of the commit that made
   them and at that commit, copied from git).
2. Where the domain and volume tasks' processes spend their imports
   (python -X importtime, self time summed by origin), before and after.
3. The steps inside the module (in-process, the collection's own code):
   connecting, the host capabilities the lock is keyed by, the lock, the
   observation, the scratch connection that normalises a declared XML.
4. What one task costs in a playbook: a loop of 20 no-op tasks of the domain
   module vs of ping, through ansible-playbook.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import benchlib

NAME = benchlib.PREFIX + 'cost'
VOLUME = benchlib.PREFIX + 'cost.qcow2'
# The commit that made the no-op path's heavy imports lazy ("before" reverts it).
LAZY_COMMIT_SUBJECT = 'per-task cost: lazy imports'
LOOP = 20
SAMPLES = 9
STEP_REPEATS = 30
PROFILED = ('domain, name only', 'volume, existing')


def _trees(workdir):
    """{'before': the collection at the parent of the lazy-import commit,
    'after': at that commit} (copies from git, so that the comparison is
    that commit alone), or ({}, the reason) when they cannot be made."""
    git = ['git', '-C', benchlib.REPO]
    found = subprocess.run(git + ['log', '--format=%H', '-1', '--fixed-strings', '--grep', LAZY_COMMIT_SUBJECT],
                           capture_output=True, text=True, check=False)
    commit = found.stdout.strip()
    if found.returncode != 0 or not commit:
        return {}, 'no commit "%s" in this checkout' % LAZY_COMMIT_SUBJECT
    trees = {}
    for variant, revision in (('before', commit + '^'), ('after', commit)):
        root = os.path.join(workdir, variant, 'ansible_collections', 'lifecycle', 'libvirt')
        os.makedirs(root)
        archive = subprocess.run(git + ['archive', revision, 'plugins', 'meta'], capture_output=True, check=True)
        subprocess.run(['tar', '-x', '-C', root], input=archive.stdout, check=True)
        trees[variant] = os.path.join(workdir, variant)
    return trees, commit[:10]


def _ansiballz(collections, workdir, label, module, args):
    """The AnsiballZ file ansible writes for `module` with `args`."""
    remote = os.path.join(workdir, 'remote-' + label)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_PYTHON_INTERPRETER=sys.executable,
               ANSIBLE_KEEP_REMOTE_FILES='1', ANSIBLE_REMOTE_TMP=remote,
               ANSIBLE_LOCAL_TEMP=os.path.join(workdir, 'local'), ANSIBLE_NOCOLOR='1')
    command = [os.path.join(benchlib.BIN, 'ansible'), 'localhost', '-i', 'localhost,', '-c', 'local', '-m', module]
    run = subprocess.run(command + (['-a', json.dumps(args)] if args else []), capture_output=True, text=True,
                         env=env, check=False)
    if run.returncode != 0:
        raise RuntimeError('%s %s failed: %s%s' % (module, args, run.stdout, run.stderr))
    [path] = glob.glob(os.path.join(remote, '*', 'AnsiballZ_*.py'))
    return path


def _run_ansiballz(path, profile=False):
    command = [sys.executable] + (['-X', 'importtime'] if profile else []) + [path]
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    result = json.loads(run.stdout)
    if result.get('failed') or result.get('changed'):
        raise RuntimeError('%s: not a no-op: %s' % (path, result))
    return elapsed, run.stderr


def _origin(module):
    if module.startswith('ansible_collections.lifecycle.libvirt.'):
        name = module.rsplit('.', 1)[1]
        return 'lifecycle.libvirt ' + (name if name.startswith('_') else 'packages (__init__)')
    if module == 'ansible.module_utils.urls':
        return 'ansible.module_utils.urls (its own code)'
    if module.startswith('ansible.') or module == 'ansible':
        return 'ansible (module_utils.basic and what it imports)'
    if module.split('.')[0] in ('libvirt', 'libvirtmod', 'libvirtaio'):
        return 'libvirt-python'
    if module.split('.')[0] == 'lxml':
        return 'lxml'
    if module.split('.')[0] in ('pycdlib',):
        return 'pycdlib'
    return 'standard library and the rest'


def _import_profile(stderr):
    """{origin: self microseconds} from python -X importtime's lines
    ("import time: self | cumulative | module")."""
    totals = {}
    for line in stderr.splitlines():
        fields = line[len('import time:'):].split('|') if line.startswith('import time:') else []
        if len(fields) == 3 and fields[0].strip().isdigit():
            origin = _origin(fields[2].strip())
            totals[origin] = totals.get(origin, 0) + int(fields[0])
    return totals


def _module_processes(files):
    """Table 1: {(task, variant): median seconds} over interleaved runs."""
    samples = {key: [] for key in files}
    for _round in range(SAMPLES):
        for key, path in files.items():
            samples[key].append(_run_ansiballz(path)[0])
    return {key: benchlib.median(values) * 1000 for key, values in samples.items()}


def _profiles(files, task):
    """Table 2: {variant: {origin: median ms}} of `task`'s imports."""
    profiles = {}
    for variant in ('before', 'after'):
        path = files.get((task, variant))
        if path is None:
            continue
        runs = [_import_profile(_run_ansiballz(path, profile=True)[1]) for _round in range(SAMPLES)]
        origins = set().union(*runs)
        profiles[variant] = {origin: benchlib.median([run.get(origin, 0) for run in runs]) / 1000.0
                             for origin in origins}
    return profiles


def _steps():
    """Table 3: the steps inside the module, in-process, median ms."""
    sys.path.insert(0, benchlib.ansible_module.COLLECTIONS)
    from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
    from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtClient

    def timed(step):
        values = []
        for _repeat in range(STEP_REPEATS):
            started = time.perf_counter()
            step()
            values.append(time.perf_counter() - started)
        return benchlib.median(values) * 1000

    client = LibvirtClient(benchlib.URI)
    try:
        def lock():
            with client.exclusive('domain', NAME):
                pass

        def capabilities():
            # Forget the cached capabilities: what is measured is the read itself.
            client._capabilities = None  # pylint: disable=protected-access
            return client.capabilities

        rows = [
            ('connect to %s and close' % benchlib.URI, timed(lambda: LibvirtClient(benchlib.URI).close())),
            ('read the host capabilities (once per run: the lock is keyed by the host UUID)', timed(capabilities)),
            ('take and release the domain lock', timed(lock)),
            ('look the domain up and observe its state', timed(
                lambda: client.observed_state(client.domain(NAME)))),
            ('open the normalising connection (%s; only when xml is declared)' % _xml.NORMALISING_URI,
             timed(lambda: LibvirtClient(_xml.NORMALISING_URI).close())),
        ]
    finally:
        client.close()
    return rows


def _playbook_loop(ansible):
    """Table 4: seconds of a loop of LOOP no-op tasks, ping vs domain."""
    ping = ansible.playbook('    - ansible.builtin.ping:\n      loop: "{{ range(%d) | list }}"\n' % LOOP)
    domain = ansible.playbook('    - lifecycle.libvirt.domain:\n        uri: "%s"\n        name: %s\n'
                              '        state: running\n      loop: "{{ range(%d) | list }}"\n'
                              % (benchlib.URI, NAME, LOOP))
    samples = benchlib.interleaved([('ping', lambda: ansible.run(ping)), ('domain', lambda: ansible.run(domain))])
    return {label: benchlib.median(values) for label, values in samples.items()}


def main():
    workdir = tempfile.mkdtemp(prefix='lltest-bench-cost-')
    ansible = benchlib.Ansible()
    try:
        with benchlib.session() as conn:
            benchlib.remove_domains(conn, NAME)
            conn.defineXML(benchlib.diskless_xml(NAME)).create()
            pool = conn.storagePoolLookupByName('default')
            pool.createXML("<volume><name>%s</name><capacity unit='MiB'>1</capacity>"
                           "<target><format type='qcow2'/></target></volume>" % VOLUME, 0)
            try:
                trees, commit = _trees(workdir)
                variants = sorted(trees.items()) or [('after', benchlib.ansible_module.COLLECTIONS)]
                tasks = [
                    ('ping', 'ansible.builtin.ping', {}),
                    ('domain, name only', 'lifecycle.libvirt.domain',
                     dict(uri=benchlib.URI, name=NAME, state='running')),
                    ('domain, xml', 'lifecycle.libvirt.domain',
                     dict(uri=benchlib.URI, xml=benchlib.diskless_xml(NAME), state='running')),
                    ('volume, existing', 'lifecycle.libvirt.volume',
                     dict(uri=benchlib.URI, pool='default', name=VOLUME, format='qcow2', capacity='1MiB')),
                ]
                benchlib.progress('task cost: AnsiballZ files')
                files = {}
                for variant, collections in variants:
                    for label, module, args in tasks:
                        if label == 'ping' and variant != 'after':
                            continue
                        files[(label, variant)] = _ansiballz(collections, workdir, '%s-%d' % (variant, len(files)),
                                                             module, args)
                benchlib.progress('task cost: module processes')
                processes = _module_processes(files)
                benchlib.progress('task cost: import profiles')
                profiles = dict((task, _profiles(files, task)) for task in PROFILED)
                steps = _steps()
                benchlib.progress('task cost: playbook loops')
                loop = _playbook_loop(ansible)
            finally:
                benchlib.remove_domains(conn, NAME)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        ansible.cleanup()
    report(processes, profiles, steps, loop, commit if trees else None, commit)


def _print_profile(number, task, profiles):
    print('### %s. Import time of the %s task, self time by origin (python -X importtime)' % (number, task))
    print()
    variants = [variant for variant in ('before', 'after') if variant in profiles]
    origins = sorted(set().union(*[profile.keys() for profile in profiles.values()]),
                     key=lambda origin: -max(profile.get(origin, 0) for profile in profiles.values()))
    rows = [[origin] + ['%.1f' % profiles[variant].get(origin, 0) for variant in variants] for origin in origins]
    rows.append(['all imports'] + ['%.1f' % sum(profiles[variant].values()) for variant in variants])
    print(benchlib.table(['origin'] + [variant + ' ms' for variant in variants], rows))
    print()


def report(processes, profiles, steps, loop, before_commit, before_note):
    floor = processes[('ping', 'after')]
    print('## Per-task cost of one no-op task (median of %d interleaved runs, milliseconds)' % SAMPLES)
    print()
    print('### 1. The module process as Ansible runs it (its AnsiballZ file)')
    print()
    rows = []
    for label in ('ping', 'domain, name only', 'domain, xml', 'volume, existing'):
        after = processes[(label, 'after')]
        before = processes.get((label, 'before'))
        rows.append([label, '%.0f' % before if before else '-', '%.0f' % after,
                     '%+.0f' % (after - before) if before else '-', '%+.0f' % (after - floor)])
    print(benchlib.table(['task', 'before ms', 'after ms', 'after - before', 'after - ping'], rows))
    print()
    if before_commit:
        print('before / after: the collection at the parent of commit %s ("%s") / at that commit; ping: the same '
              'AnsiballZ file in both.' % (before_commit, LAZY_COMMIT_SUBJECT))
    else:
        print('before: not measured (%s); after: this tree.' % before_note)
    print()
    for number, task in enumerate(PROFILED):
        _print_profile('2%s' % 'ab'[number], task, profiles[task])
    print('### 3. Steps inside the domain module (in-process, median of %d)' % STEP_REPEATS)
    print()
    print(benchlib.table(['step', 'ms'], [[label, '%.2f' % value] for label, value in steps]))
    print()
    print('### 4. A loop of %d no-op tasks through ansible-playbook (median of %d rounds, seconds)' % (
        LOOP, benchlib.ROUNDS))
    print()
    per_task = (loop['domain'] - loop['ping']) / LOOP * 1000
    print(benchlib.table(['loop of %d' % LOOP, 'seconds', 'per task over ping'], [
        ['ansible.builtin.ping', '%.2f' % loop['ping'], '-'],
        ['lifecycle.libvirt.domain (name, state=running)', '%.2f' % loop['domain'], '%+.0f ms' % per_task]]))
    print()
    print('What a no-op domain task costs beyond ping is its imports (libvirt-python, lxml and the collection\'s '
          'module_utils, compiled from the zip on every run) and a few milliseconds of libvirt calls; most of a '
          'task is Ansible\'s own (the controller forks a worker, templates, writes and starts the AnsiballZ '
          'file, which imports ansible.module_utils.basic).  One task for many domains (the batch form) pays '
          'that once.')
    print(benchlib.SHARED_MACHINE_NOTE)
    print()


if __name__ == '__main__':
    main()
