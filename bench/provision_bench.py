"""Benchmark P2 (not a test): first provisioning of many VMs from one base
image, the provision role vs a raw libvirt-python script.

    .build/bench-venv/bin/python bench/provision_bench.py      (make bench)

Twenty (BENCH_VMS) VMs, each a copy-on-write qcow2 overlay of one base
volume, defined and started:

* role: ansible-playbook running lifecycle.libvirt.provision with the
  twenty VMs (what users run: controller start-up included);
* raw: a libvirt-python script (its own Python process) creating each
  overlay volume, defining the domain and starting it.

The VMs do not boot an OS (the base image is empty: the firmware finds
nothing to boot and idles); what is measured is the tooling and libvirt's
work - volume, definition, QEMU start.  Each round provisions from scratch:
the VMs and their volumes are removed between runs (not timed).
Target (issue 12): the role at most 1.5x the raw script.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import benchlib

COUNT = int(os.environ.get('BENCH_VMS', '20'))
PREFIX = benchlib.PREFIX + 'prov-'
BASE = PREFIX + 'base.qcow2'
# A pool of its own: the other sessions' jobs on pool default (wipes,
# uploads) would make its volume calls wait.
POOL = PREFIX + 'pool'
MEMORY_MIB = 64
NAMES = ['%svm%02d' % (PREFIX, index) for index in range(COUNT)]

ROLE_PLAY = '''    - ansible.builtin.include_role:
        name: lifecycle.libvirt.provision
'''

RAW_SCRIPT = '''
import sys, libvirt
uri, pool_name, base, memory_mib = sys.argv[1:5]
conn = libvirt.open(uri)
pool = conn.storagePoolLookupByName(pool_name)
base_volume = pool.storageVolLookupByName(base)
capacity = base_volume.info()[1]
for name in sys.argv[5:]:
    overlay = pool.createXML(
        "<volume><name>%s-root.qcow2</name><capacity unit='bytes'>%d</capacity>"
        "<target><format type='qcow2'/></target>"
        "<backingStore><path>%s</path><format type='qcow2'/></backingStore></volume>"
        % (name, capacity, base_volume.path()), 0)
    domain = conn.defineXML(
        "<domain type='qemu'><name>%s</name><memory unit='MiB'>%s</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%s'/>"
        "<target dev='vda' bus='virtio'/></disk></devices></domain>" % (name, memory_mib, overlay.path()))
    domain.create()
'''


def remove_vms(conn):
    """The VMs and their overlays (the base stays)."""
    benchlib.remove_domains(conn, PREFIX + 'vm')


def main():
    ansible = benchlib.Ansible()
    vms = [dict(name=name, base_volume=BASE, memory_mib=MEMORY_MIB, vcpus=1) for name in NAMES]
    play = ansible.playbook(ROLE_PLAY)
    extra = dict(provision_uri=benchlib.URI, provision_pool=POOL, provision_domain_type='qemu', provision_vms=vms)
    raw = ansible.write('raw.py', RAW_SCRIPT)
    columns = [
        ('provision role (ansible-playbook)', lambda: ansible.run(play, extra, changed=None)),
        ('raw libvirt-python script', lambda: subprocess.run(
            [sys.executable, raw, benchlib.URI, POOL, BASE, str(MEMORY_MIB)] + NAMES, check=True)),
    ]
    pool_dir = tempfile.mkdtemp(prefix=PREFIX, dir='/var/tmp')
    os.chmod(pool_dir, 0o755)  # QEMU (libvirt-qemu) opens the images
    try:
        with benchlib.session() as conn:
            benchlib.remove_domains(conn, PREFIX)
            pool = conn.storagePoolCreateXML("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>"
                                             % (POOL, pool_dir), 0)
            try:
                pool.createXML("<volume><name>%s</name><capacity unit='MiB'>64</capacity>"
                               "<target><format type='qcow2'/></target></volume>" % BASE, 0)
                samples = benchlib.interleaved(columns, before_each=lambda _label: remove_vms(conn))
                running = sum(1 for name in NAMES if conn.lookupByName(name).isActive())
            finally:
                benchlib.remove_domains(conn, PREFIX)
                pool.destroy()  # a transient pool: gone once stopped
    finally:
        shutil.rmtree(pool_dir, ignore_errors=True)
        ansible.cleanup()
    if running != COUNT:
        raise RuntimeError('%d of %d VMs run after the last provisioning' % (running, COUNT))
    report(samples)


def report(samples):
    medians = {label: benchlib.median(values) for label, values in samples.items()}
    raw = medians['raw libvirt-python script']
    role = medians['provision role (ansible-playbook)']
    print('## P2: first provisioning of %d VMs from one base image: overlay + define + start '
          '(median of %d interleaved rounds, seconds)' % (COUNT, benchlib.ROUNDS))
    print()
    print(benchlib.table(['column', 'median s', 'min-max s', 'x raw'], [
        [label, '%.2f' % medians[label], benchlib.spread(values), '%.2fx' % (medians[label] / raw)]
        for label, values in samples.items()]))
    print()
    print('VMs: %d MiB, 1 vCPU, TCG, a qcow2 overlay of an empty base volume: QEMU starts, no OS boots.' % MEMORY_MIB)
    print('Target role <= 1.5x raw: %.2fx, %s.' % (role / raw, benchlib.verdict(role / raw, 1.5)))
    print(benchlib.SHARED_MACHINE_NOTE)
    print()


if __name__ == '__main__':
    main()
