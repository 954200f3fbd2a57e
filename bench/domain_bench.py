"""Benchmark: lifecycle.libvirt.domain vs raw libvirt-python vs community.libvirt.virt.

Not a test: it prints a table.  Run with `make bench` (which provides a
virtualenv with the `ansible` package, where community.libvirt ships).

Each module runs the way Ansible runs it - its own Python process reading a
JSON arguments file - so the module columns include interpreter start-up and
imports; the raw column is the libvirt calls alone, in-process.  The domain
does not boot an OS (no disk, no kernel): what is measured is the tooling.
"""

import os
import statistics
import sys
import time

import libvirt

import benchlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'testbed'))
import ansible_module  # noqa: E402

COLLECTIONS = [ansible_module.COLLECTIONS]
URI = 'qemu:///system'
ROUNDS = int(os.environ.get('BENCH_ROUNDS', '5'))
NAME = 'lltest-bench-domain'
XML = ("<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
       "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices><serial type='pty'/></devices></domain>" % NAME)


def run_module(module, **params):
    result, _output = ansible_module.run_module(module, params, COLLECTIONS)
    if result.get('failed'):
        raise RuntimeError('%s failed: %s' % (module, result.get('msg')))
    return result


def ours(**params):
    return run_module(ansible_module.OUR_MODULES + 'domain', uri=URI, **params)


def community(**params):
    return run_module('ansible_collections.community.libvirt.plugins.modules.virt', uri=URI, **params)


def cleanup(conn):
    try:
        domain = conn.lookupByName(NAME)
    except libvirt.libvirtError:
        return
    if domain.isActive():
        domain.destroy()
    domain.undefine()


# One scenario = (setup, then the timed steps) for each tool.
def raw_cycle(conn):
    domain = conn.defineXML(XML)
    domain.create()
    domain.destroy()
    domain.undefine()


def ours_cycle(_conn):
    ours(xml=XML, state='running')
    ours(name=NAME, state='absent', force=True, shutdown_timeout=0)


def community_cycle(_conn):
    community(command='define', xml=XML)
    community(name=NAME, state='running')
    community(name=NAME, state='destroyed')
    community(name=NAME, command='undefine')


def raw_noop(conn):
    domain = conn.lookupByName(NAME)
    if domain.state()[0] != libvirt.VIR_DOMAIN_RUNNING:
        domain.create()


def ours_noop(_conn):
    assert not ours(xml=XML, state='running')['changed']


def community_noop(_conn):
    assert not community(name=NAME, state='running').get('changed', False)


def measure(conn, step, setup=None):
    samples = []
    for _round in range(ROUNDS):
        cleanup(conn)
        if setup:
            setup(conn)
        started = time.monotonic()
        step(conn)
        samples.append(time.monotonic() - started)
    cleanup(conn)
    return statistics.median(samples) * 1000


def running(conn):
    conn.defineXML(XML).create()


def main():
    libvirt.registerErrorHandler(lambda *_: None, None)
    community_dir = benchlib.community_collections_dir()
    have_community = community_dir is not None
    if have_community:
        COLLECTIONS.append(community_dir)
    rows = [
        ('define+start+destroy+undefine', raw_cycle, ours_cycle, community_cycle, None),
        ('converge running, no change', raw_noop, ours_noop, community_noop, running),
    ]
    print('lifecycle.libvirt.domain benchmark: median of %d rounds, milliseconds' % ROUNDS)
    print('| scenario | raw libvirt-python | lifecycle.libvirt | community.libvirt | ours/raw | ours/community |')
    print('|---|---:|---:|---:|---:|---:|')
    with benchlib.session(URI) as conn:  # a concurrent test session's sweep leaves it alone
        for label, raw, ours_step, community_step, setup in rows:
            raw_ms = measure(conn, raw, setup)
            ours_ms = measure(conn, ours_step, setup)
            community_ms = measure(conn, community_step, setup) if have_community else float('nan')
            print('| %s | %.1f | %.1f | %.1f | %.1fx | %.2fx |' % (
                label, raw_ms, ours_ms, community_ms, ours_ms / raw_ms, ours_ms / community_ms))
    if not have_community:
        print('(community.libvirt not installed: run through `make bench`)')


if __name__ == '__main__':
    main()
