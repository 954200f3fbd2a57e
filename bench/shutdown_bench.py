"""Benchmark P1b (not a test): ACPI shutdown of many booted guests in one
batch vs one guest alone.

    .build/bench-venv/bin/python bench/shutdown_bench.py      (make bench)

Twenty (BENCH_GUESTS) tiny test guests (tests/testbed/guest.py: kernel and
busybox initramfs, no data disk, BENCH_GUEST_MIB of memory each) really
boot; each round boots them all, waits for each one's ready marker (the boot
is timed apart, not part of the figure; the guests boot two at a time), then
times:

* batch: one lifecycle.libvirt.domain task, `domains:` with every guest,
  state=defined (an ACPI shutdown each, waited for), `parallel` as many as
  there are guests;
* raw: libvirt-python in one process asks every guest to shut down at
  once, then polls until all are off - what this machine allows at best;
* one guest: the same task, single form, for one guest booted alone.

The modules run as Ansible runs them (their own Python process), without
ansible-playbook's start-up, which would add the same few seconds to both.
Target (issue 12): batch at most 2x one guest.
"""

import os
import shutil
import sys
import tempfile
import time

import benchlib

import guest  # tests/testbed, on the path through benchlib
import testbed

COUNT = int(os.environ.get('BENCH_GUESTS', '20'))
MEMORY_MIB = int(os.environ.get('BENCH_GUEST_MIB', '128'))
PREFIX = benchlib.PREFIX + 'down-'
BOOT_TIMEOUT = 300
BOOT_ATTEMPTS = 3
# Guests started at once (the boot is not timed; two at a time on 2 cores).
BOOT_WAVE = 2
SHUTDOWN_TIMEOUT = 600


class Guests:
    def __init__(self, conn, workdir):
        self.conn = conn
        self.workdir = workdir
        self.names = ['%s%02d' % (PREFIX, index) for index in range(COUNT)]
        self.panics = 0
        for name in self.names:
            conn.defineXML(guest.domain_xml(name, domain_type=testbed.domain_type(), memory_mib=MEMORY_MIB,
                                            serial_log=self.log(name)))

    def log(self, name):
        return os.path.join(self.workdir, name + '.log')

    def boot(self, names):
        """Start `names`, BOOT_WAVE at a time, and wait until each is ready;
        seconds it took.  A guest whose kernel panicked is started again:
        booting many TCG guests at once on a busy machine can make the
        kernel's timer check fail ("IO-APIC + timer doesn't work")."""
        started = time.monotonic()
        for first in range(0, len(names), BOOT_WAVE):
            wave = names[first:first + BOOT_WAVE]
            for name in wave:
                self.conn.lookupByName(name).create()
            for name in wave:
                self._wait_ready(name)
        return time.monotonic() - started

    def _wait_ready(self, name):
        for _attempt in range(BOOT_ATTEMPTS):
            deadline = time.monotonic() + BOOT_TIMEOUT
            while time.monotonic() < deadline:
                try:
                    with open(self.log(name), errors='replace') as handle:
                        text = handle.read()
                except FileNotFoundError:
                    text = ''  # QEMU has not opened it yet
                if guest.READY_MARKER in text:
                    return
                if 'Kernel panic' in text:
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError('%s: not ready after %d s' % (name, BOOT_TIMEOUT))
            self.panics += 1
            domain = self.conn.lookupByName(name)
            domain.destroy()
            domain.create()
        raise RuntimeError('%s: its kernel panicked %d times in a row' % (name, BOOT_ATTEMPTS))

    def all_off(self, names):
        return not any(self.conn.lookupByName(name).isActive() for name in names)


def module_shutdown(params):
    result, output = benchlib.ansible_module.run_module(
        benchlib.ansible_module.OUR_MODULES + 'domain',
        dict(params, uri=benchlib.URI, state='defined', shutdown_timeout=SHUTDOWN_TIMEOUT))
    if result.get('failed') or not result.get('changed'):
        raise RuntimeError('shutdown failed: %s\n%s' % (result, output[-2000:]))


def raw_shutdown(conn, names):
    domains = [conn.lookupByName(name) for name in names]
    for domain in domains:
        domain.shutdownFlags(1)  # VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN
    deadline = time.monotonic() + SHUTDOWN_TIMEOUT
    while any(domain.isActive() for domain in domains):
        if time.monotonic() > deadline:
            raise RuntimeError('raw shutdown: guests still running after %d s' % SHUTDOWN_TIMEOUT)
        time.sleep(0.1)


def main():
    have_batch = benchlib.has_batch_form()
    workdir = tempfile.mkdtemp(prefix=PREFIX)
    os.chmod(workdir, 0o777)  # QEMU (libvirt-qemu) writes the serial logs
    boots = {'all': [], 'one': []}
    try:
        with benchlib.session() as conn:
            benchlib.remove_domains(conn, PREFIX)
            guests = Guests(conn, workdir)
            first = guests.names[:1]
            columns = []
            if have_batch:
                columns.append(('batch: %d guests, one task' % COUNT, 'all', lambda: module_shutdown(
                    dict(domains=[dict(name=name) for name in guests.names], parallel=COUNT))))
            columns.append(('raw libvirt-python: %d guests at once' % COUNT, 'all',
                            lambda: raw_shutdown(conn, guests.names)))
            columns.append(('one guest alone, one task', 'one', lambda: module_shutdown(dict(name=first[0]))))
            samples = {label: [] for label, _which, _step in columns}
            try:
                for _round in range(benchlib.ROUNDS):
                    for label, which, step in columns:
                        names = guests.names if which == 'all' else first
                        boots[which].append(guests.boot(names))
                        started = time.monotonic()
                        step()
                        samples[label].append(time.monotonic() - started)
                        if not guests.all_off(names):
                            raise RuntimeError('%s: guests still running after the shutdown' % label)
            finally:
                benchlib.remove_domains(conn, PREFIX)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(samples, boots, have_batch, guests.panics)


def report(samples, boots, have_batch, panics):
    print('## P1b: ACPI shutdown of %d booted guests (median of %d interleaved rounds, seconds)' % (
        COUNT, benchlib.ROUNDS))
    print()
    medians = {label: benchlib.median(values) for label, values in samples.items()}
    one = medians['one guest alone, one task']
    rows = [[label, '%.2f' % medians[label], benchlib.spread(values), '%.2fx' % (medians[label] / one)]
            for label, values in samples.items()]
    print(benchlib.table(['shutdown', 'median s', 'min-max s', 'x one guest'], rows))
    print()
    accelerator = 'TCG' if testbed.domain_type() == 'qemu' else 'KVM'
    print('Guests: the test guest (%d MiB, 1 vCPU, %s), booted before each timed shutdown (%d at a time): all %d '
          'in %.0f s (median), one alone in %.1f s; %d boots panicked (timer check) and were started again.'
          % (MEMORY_MIB, accelerator, BOOT_WAVE, COUNT, benchlib.median(boots['all']), benchlib.median(boots['one']),
             panics))
    if have_batch:
        batch = medians['batch: %d guests, one task' % COUNT]
        print('Target batch <= 2x one guest: %.2fx, %s.' % (batch / one, benchlib.verdict(batch / one, 2.0)))
    else:
        print('batch form not available: lifecycle.libvirt.domain has no `domains:` option in this tree.')
    print('Each guest\'s power-off runs in its own QEMU process; under TCG it is CPU work, so %d of them at once on '
          '2 cores take longer than one alone whatever the tool does - the raw column is that floor.' % COUNT)
    print(benchlib.SHARED_MACHINE_NOTE)
    print()


if __name__ == '__main__':
    sys.exit(main())
