#!/usr/bin/env python3
"""Storage benchmark (not a test): how the modules compare with doing the
same thing directly.

    .venv/bin/python bench/storage_bench.py [--size-mib 1024] [--volumes 20]

* Wipe of one raw volume filled with a non-zero pattern: the wipe module
  (a real module process, as Ansible runs it; with and without verify)
  vs libvirt's virStorageVolWipePattern called directly vs
  ``dd if=/dev/zero`` of the same size (conv=fsync).
* Copy-on-write provisioning of N overlays of one base volume: N volume
  module runs vs the same logic in one process vs a raw libvirt-python loop.

Everything it creates is named ``lltest-bench-...`` in pool ``default`` and
is deleted at the end, also on failure.
"""

import argparse
import os
import subprocess
import sys
import time
import uuid

import libvirt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'testbed'))
import ansible_module  # noqa: E402

sys.path.insert(0, ansible_module.COLLECTIONS)
URI = os.environ.get('LIFECYCLE_TEST_URI', 'qemu:///system')
MIB = 1 << 20

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtClient  # noqa: E402
from ansible_collections.lifecycle.libvirt.plugins.module_utils._volume import (  # noqa: E402
    VOLUME_ARGUMENT_SPEC, converge_volume)


def run_module(module, **params):
    result, _output = ansible_module.run_module(ansible_module.OUR_MODULES + module, dict(params, uri=URI))
    if result.get('failed'):
        raise RuntimeError('%s failed: %s' % (module, result['msg']))
    return result


def timed(operation):
    started = time.monotonic()
    operation()
    return time.monotonic() - started


def fill(path, size):
    block = b'\xa5' * MIB
    with open(path, 'r+b') as handle:
        for _block in range(size // MIB):
            handle.write(block)
        handle.flush()
        os.fsync(handle.fileno())


def bench_wipe(conn, pool, prefix, size):
    name = prefix + 'wipe.raw'
    volume = pool.createXML("<volume><name>%s</name><capacity>%d</capacity><allocation>0</allocation>"
                            "<target><format type='raw'/></target></volume>" % (name, size), 0)
    path = volume.path()
    rows = []
    cases = [
        ('wipe module (zero)', lambda: run_module('wipe', name=name)),
        ('wipe module (zero, verify)', lambda: run_module('wipe', name=name, verify=True)),
        ('libvirt wipePattern directly', lambda: volume.wipePattern(libvirt.VIR_STORAGE_VOL_WIPE_ALG_ZERO, 0)),
        ('dd if=/dev/zero conv=fsync', lambda: subprocess.run(
            ['dd', 'if=/dev/zero', 'of=' + path, 'bs=1M', 'count=%d' % (size // MIB), 'conv=notrunc,fsync'],
            check=True, capture_output=True)),
    ]
    for label, operation in cases:
        fill(path, size)
        pool.refresh(0)
        rows.append(('wipe %d MiB' % (size // MIB), label, timed(operation), None))
        if label == 'wipe module (zero)':
            rows.append(('wipe %d MiB' % (size // MIB), 'wipe module again (reads it back: all zeros, no write)',
                         timed(lambda: run_module('wipe', name=name)), None))
    rows.append(('wipe %d MiB' % (size // MIB), 'wipe module after dd (reads it back: all zeros, no write)',
                 timed(lambda: run_module('wipe', name=name)), None))
    return rows


def bench_cow(conn, pool, prefix, count):
    base = prefix + 'base.qcow2'
    pool.createXML("<volume><name>%s</name><capacity>%d</capacity><target><format type='qcow2'/></target>"
                   "</volume>" % (base, 1 << 30), 0)
    base_path = pool.storageVolLookupByName(base).path()
    rows = []

    def module_loop():
        for index in range(count):
            run_module('volume', name='%smod-%02d.qcow2' % (prefix, index), backing_volume=base)

    def in_process_loop():
        client = LibvirtClient(URI)
        try:
            for index in range(count):
                params = dict((key, spec.get('default')) for key, spec in VOLUME_ARGUMENT_SPEC.items())
                params.update(name='%slib-%02d.qcow2' % (prefix, index), backing_volume=base)
                converge_volume(client, params, check_mode=False)
        finally:
            client.close()

    def raw_loop():
        for index in range(count):
            pool.createXML(
                "<volume><name>%sraw-%02d.qcow2</name><capacity>%d</capacity><target><format type='qcow2'/>"
                "<permissions><mode>0600</mode></permissions></target><backingStore><path>%s</path>"
                "<format type='qcow2'/></backingStore></volume>" % (prefix, index, 1 << 30, base_path), 0)

    for label, operation in (('volume module, %d runs' % count, module_loop),
                             ('same logic in one process (_volume.converge_volume)', in_process_loop),
                             ('raw libvirt-python createXML loop', raw_loop)):
        seconds = timed(operation)
        rows.append(('CoW provisioning x%d' % count, label, seconds, seconds / count))
    return rows


def cleanup(conn, prefix):
    pool = conn.storagePoolLookupByName('default')
    try:
        pool.refresh(0)
    except libvirt.libvirtError:
        pass
    # overlays first, then their base
    for volume in sorted(pool.listAllVolumes(0), key=lambda v: 'base' in v.name()):
        if volume.name().startswith(prefix):
            volume.delete(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mib', type=int, default=1024)
    parser.add_argument('--volumes', type=int, default=20)
    options = parser.parse_args()
    libvirt.registerErrorHandler(lambda _context, _error: None, None)
    conn = libvirt.open(URI)
    pool = conn.storagePoolLookupByName('default')
    prefix = 'lltest-bench-%s-' % uuid.uuid4().hex[:6]
    try:
        rows = bench_wipe(conn, pool, prefix, options.size_mib * MIB) + bench_cow(conn, pool, prefix, options.volumes)
    finally:
        cleanup(conn, prefix)
        conn.close()
    print('| operation | method | seconds | per volume |')
    print('|---|---|---:|---:|')
    for operation, method, seconds, each in rows:
        print('| %s | %s | %.2f | %s |' % (operation, method, seconds, '%.3f' % each if each is not None else ''))


if __name__ == '__main__':
    main()
