"""Benchmark P4 (not a test): the no-op converge of P1 on four hypervisors
in parallel (Ansible forks) vs on one.

    .build/bench-venv/bin/python bench/fleet_hosts_bench.py      (make bench)

Starts a four-host rig (tests/testbed/rig.py --hosts 4: four libvirt
daemons in their own namespaces on this machine), fifty (BENCH_DOMAINS)
running diskless domains on each, and an inventory with one Ansible host
per hypervisor (local connection, its own `uri`).  Timed, interleaved:

* batch, 1 host / 4 hosts: ansible-playbook, one lifecycle.libvirt.domain
  task with the `domains:` list of the host's fifty domains;
* ping, 1 host / 4 hosts: a play with one ansible.builtin.ping task - what
  Ansible itself costs for one host and for four.

Target (issue 12): four hosts at most 1.3x one host.
"""

import os

import benchlib

import rig as rig_module  # tests/testbed, on the path through benchlib

COUNT = int(os.environ.get('BENCH_DOMAINS', '50'))
HOSTS = 4
PREFIX = benchlib.PREFIX + 'hosts-'
NAMES = ['%s%02d' % (PREFIX, index) for index in range(COUNT)]

BATCH_TASK = '''    - lifecycle.libvirt.domain:
        uri: "{{ bench_uri }}"
        state: running
        domains: "{{ bench_domains }}"
'''
PING_TASK = '''    - ansible.builtin.ping:
'''


def _cpu_seconds(marker):
    """CPU seconds used so far by the processes whose command line has `marker`."""
    total = 0.0
    ticks = os.sysconf('SC_CLK_TCK')
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                if marker.encode() not in handle.read():
                    continue
            with open('/proc/%s/stat' % pid) as handle:
                fields = handle.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def main():
    if not benchlib.has_batch_form():
        print('## P4: batch form not available (lifecycle.libvirt.domain has no `domains:` option): not measured')
        return
    ansible = benchlib.Ansible()
    domains = [dict(name=name) for name in NAMES]
    try:
        with rig_module.Rig.create(prefix='lltest-bench-rig-', hosts=HOSTS) as rig:
            setup = 0.0
            for host in rig.hosts:
                conn = host.open()
                try:
                    setup += benchlib.start_diskless(conn, NAMES)
                finally:
                    conn.close()
            inventories = {}
            for count in (1, HOSTS):
                inventories[count] = ansible.inventory(dict(
                    ('hv-' + host.label, dict(bench_uri=host.uri, bench_domains=domains))
                    for host in rig.hosts[:count]))
            batch = ansible.playbook(BATCH_TASK, hosts='all')
            ping = ansible.playbook(PING_TASK, hosts='all')
            columns = []
            for count in (1, HOSTS):
                columns.append(('batch, %d host%s' % (count, 's' if count > 1 else ''),
                                lambda count=count: ansible.run(batch, inventory=inventories[count], forks=HOSTS)))
                columns.append(('ping, %d host%s' % (count, 's' if count > 1 else ''),
                                lambda count=count: ansible.run(ping, inventory=inventories[count], forks=HOSTS)))
            guests_cpu = _cpu_seconds('guest=' + PREFIX)
            samples = benchlib.interleaved(columns)
            elapsed = sum(sum(values) for values in samples.values())
            guests_load = (_cpu_seconds('guest=' + PREFIX) - guests_cpu) / elapsed
    finally:
        ansible.cleanup()
    report(samples, setup, guests_load)


def report(samples, setup, guests_load):
    medians = {label: benchlib.median(values) for label, values in samples.items()}
    print('## P4: no-op converge of %d running domains per hypervisor, %d hypervisors in parallel vs one '
          '(median of %d interleaved rounds, seconds)' % (COUNT, HOSTS, benchlib.ROUNDS))
    print()
    one = {'batch': medians['batch, 1 host'], 'ping': medians['ping, 1 host']}
    rows = [[label, '%.2f' % medians[label], benchlib.spread(values),
             '%.2fx' % (medians[label] / one[label.split(',')[0]])] for label, values in samples.items()]
    print(benchlib.table(['column', 'median s', 'min-max s', 'x same on 1 host'], rows))
    print()
    ratio = medians['batch, %d hosts' % HOSTS] / one['batch']
    print('Target %d hosts <= 1.3x one host: %.2fx, %s.' % (HOSTS, ratio, benchlib.verdict(ratio, 1.3)))
    print('Rig: %d libvirt daemons on this machine (tests/testbed/rig.py), %d diskless domains each, started in '
          '%.0f s in all; while measuring, their %d idle QEMU processes used %.2f of the 2 cores.' % (
              HOSTS, COUNT, setup, HOSTS * COUNT, guests_load))
    print('What 2 cores mean here: each host is its own Ansible worker and module process (Python start-up, '
          'imports, JSON of %d results) and its own libvirtd; with %d hosts on 2 cores those run two at a time '
          'at best, so the CPU-bound part of a run takes about %d/2 = %.0fx as long as one host\'s, and the ping '
          'rows show what that costs Ansible alone. On a fleet each hypervisor is its own machine and only the '
          'controller\'s forks share cores.' % (COUNT, HOSTS, HOSTS, HOSTS / 2.0))
    print(benchlib.SHARED_MACHINE_NOTE)
    print()


if __name__ == '__main__':
    main()
