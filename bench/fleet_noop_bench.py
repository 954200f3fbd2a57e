"""Benchmark P1 (not a test): a no-op converge of many running domains.

    .build/bench-venv/bin/python bench/fleet_noop_bench.py      (make bench)

Fifty running domains (BENCH_DOMAINS), nothing to change.  Each Ansible
column is one ansible-playbook run - what users run: controller start-up,
the play, the module processes:

* batch: one lifecycle.libvirt.domain task with the `domains:` list;
* our loop: one lifecycle.libvirt.domain task per domain (an Ansible loop);
* community loop: community.libvirt.virt state=running per domain;
* ping floor: a play with a single ansible.builtin.ping task - the least a
  playbook run costs;
* raw: a libvirt-python script (its own Python process: start-up, import,
  connection) that looks each domain up and starts the ones not running.

The domains do not boot an OS (no disk, no kernel: the firmware runs and
idles); a no-op converge only looks at them.  Targets (issue 12): batch at
most 0.15x the community loop and at most 1.5x the ping floor.
"""

import os
import subprocess
import sys

import benchlib

COUNT = int(os.environ.get('BENCH_DOMAINS', '50'))
PREFIX = benchlib.PREFIX + 'noop-'
NAMES = ['%s%02d' % (PREFIX, index) for index in range(COUNT)]

RAW_SCRIPT = '''
import sys, libvirt
conn = libvirt.open(sys.argv[1])
for name in sys.argv[2:]:
    domain = conn.lookupByName(name)
    if domain.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
        domain.create()
'''

BATCH_TASK = '''    - lifecycle.libvirt.domain:
        uri: "{{ bench_uri }}"
        state: running
        domains: "{{ bench_domains }}"
'''
OUR_LOOP_TASK = '''    - lifecycle.libvirt.domain:
        uri: "{{ bench_uri }}"
        name: "{{ item }}"
        state: running
      loop: "{{ bench_names }}"
'''
COMMUNITY_LOOP_TASK = '''    - community.libvirt.virt:
        uri: "{{ bench_uri }}"
        name: "{{ item }}"
        state: running
      loop: "{{ bench_names }}"
'''
PING_TASK = '''    - ansible.builtin.ping:
'''


def main():
    ansible = benchlib.Ansible()
    have_batch = benchlib.has_batch_form()
    have_community = benchlib.community_collections_dir() is not None
    extra = dict(bench_uri=benchlib.URI, bench_names=NAMES, bench_domains=[dict(name=name) for name in NAMES])
    columns = []
    if have_batch:
        columns.append(('batch (one task, domains:)', lambda: ansible.run(ansible.playbook(BATCH_TASK), extra)))
    columns.append(('our loop (one task per domain)', lambda: ansible.run(ansible.playbook(OUR_LOOP_TASK), extra)))
    if have_community:
        columns.append(('community.libvirt.virt loop', lambda: ansible.run(ansible.playbook(COMMUNITY_LOOP_TASK), extra)))
    columns.append(('ping floor (one ping task)', lambda: ansible.run(ansible.playbook(PING_TASK))))
    raw = ansible.write('raw.py', RAW_SCRIPT)
    columns.append(('raw libvirt-python script', lambda: subprocess.run(
        [sys.executable, raw, benchlib.URI] + NAMES, check=True)))
    try:
        with benchlib.session() as conn:
            benchlib.remove_domains(conn, PREFIX)
            setup = benchlib.start_diskless(conn, NAMES)
            try:
                samples = benchlib.interleaved(columns)
            finally:
                benchlib.remove_domains(conn, PREFIX)
    finally:
        ansible.cleanup()
    report(samples, have_batch, have_community, setup)


def report(samples, have_batch, have_community, setup):
    medians = {label: benchlib.median(values) for label, values in samples.items()}
    floor = medians['ping floor (one ping task)']
    community = medians.get('community.libvirt.virt loop')
    print('## P1: no-op converge of %d running domains (median of %d interleaved rounds, seconds)' % (
        COUNT, benchlib.ROUNDS))
    print()
    rows = []
    for label, values in samples.items():
        rows.append([label, '%.2f' % medians[label], benchlib.spread(values), '%.2fx' % (medians[label] / floor),
                     '%.3fx' % (medians[label] / community) if community else 'n/a'])
    print(benchlib.table(['column', 'median s', 'min-max s', 'x ping floor', 'x community loop'], rows))
    print()
    print('Domains: diskless (no OS boots; the firmware idles), started in %.1f s before the rounds.' % setup)
    if have_batch:
        batch = medians['batch (one task, domains:)']
        if community:
            print('Target batch <= 0.15x community loop: %.3fx, %s.' % (
                batch / community, benchlib.verdict(batch / community, 0.15)))
        print('Target batch <= 1.5x ping floor: %.2fx, %s.' % (batch / floor, benchlib.verdict(batch / floor, 1.5)))
    else:
        print('batch form not available: lifecycle.libvirt.domain has no `domains:` option in this tree, '
              'so the batch column was not measured.')
    if not have_community:
        print('(community.libvirt not installed: run through `make bench`)')
    print(benchlib.SHARED_MACHINE_NOTE)
    print()


if __name__ == '__main__':
    main()
