"""Benchmark (not a test): lifecycle.libvirt.migrate vs raw libvirt-python.

    .venv/bin/python bench/migrate_bench.py [ROUNDS]

Starts the two-host rig (tests/testbed/rig.py), boots one idle test guest on
host a and moves it a -> b -> a ROUNDS times (default 3) each way:

* ``module``: the module run as Ansible runs it (its own Python process:
  argument parsing, both connections, the eight pre-migration checks, the
  migration, the completed job statistics);
* ``raw``: ``virDomain.migrate3`` from this process on open connections
  (no checks), with the same flags (live, persist_dest, undefine_source,
  unsafe - the rig's shared directory is on a local file system).

Prints one row per method: wall-clock seconds per migration (mean, median,
min, max) and libvirt's reported downtime.
"""

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'testbed'))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))

import libvirt  # noqa: E402

import rig as rig_module  # noqa: E402
from conftest import run_module  # noqa: E402
from rig_fixture import RigGuest  # noqa: E402

FLAGS = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST
         | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE | libvirt.VIR_MIGRATE_UNSAFE)


def module_move(source, dest, name):
    started = time.monotonic()
    result = run_module('migrate', uri=source.uri, dest_uri=dest.uri, name=name, unsafe=True)
    elapsed = time.monotonic() - started
    assert result.get('changed') and not result.get('failed'), result
    return elapsed, result['downtime_ms']


def raw_move(connections, source, dest, name):
    started = time.monotonic()
    moved = connections[source.label].lookupByName(name).migrate3(connections[dest.label], {}, FLAGS)
    elapsed = time.monotonic() - started
    return elapsed, moved.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED).get('downtime')


def row(method, samples):
    times = [sample[0] for sample in samples]
    downtimes = [sample[1] for sample in samples if sample[1] is not None]
    return '| %-6s | %3d | %6.2f | %6.2f | %6.2f | %6.2f | %8.0f |' % (
        method, len(samples), statistics.mean(times), statistics.median(times), min(times), max(times),
        statistics.mean(downtimes) if downtimes else float('nan'))


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with rig_module.Rig.create(prefix='lltest-bench-') as rig:
        vm = RigGuest(rig, 'lltest-bench')
        vm.start(rig.a)
        connections = {host.label: host.open() for host in rig.hosts}
        samples = {'module': [], 'raw': []}
        try:
            for _round in range(rounds):
                for source, dest in ((rig.a, rig.b), (rig.b, rig.a)):
                    samples['module'].append(module_move(source, dest, vm.name))
                for source, dest in ((rig.a, rig.b), (rig.b, rig.a)):
                    samples['raw'].append(raw_move(connections, source, dest, vm.name))
        finally:
            for conn in connections.values():
                conn.close()
    print('Idle guest (256 MiB, %s), %d rounds a->b->a; seconds per migration' % (
        'TCG' if 'qemu' in vm.xml.split('\n', 1)[0] else 'KVM', rounds))
    print('| method | n   | mean   | median | min    | max    | downtime ms |')
    print('|--------|-----|--------|--------|--------|--------|-------------|')
    for method in ('module', 'raw'):
        print(row(method, samples[method]))


if __name__ == '__main__':
    main()
