"""Hypervisors side by side: the evacuate playbook (the migrate role) run
against several inventory hosts at once evacuates them in parallel, each
host its own source and destination on the rig, instead of one host after
the other."""

import json
import os
import re
import subprocess
import sys
import uuid

import ansible_module  # tests/testbed, on the path through conftest
import testbed
from conftest import REPO
from rig_fixture import rig, where  # noqa: F401  pylint: disable=unused-import

BIN = os.path.dirname(sys.executable)
EVACUATE = os.path.join(REPO, 'playbooks', 'evacuate.yml')
START_TASK = 'TASK [lifecycle.libvirt.migrate : Start the migrations of this batch]'


def _diskless(host, name):
    """A running domain without disks (nothing to share or copy to move it)."""
    conn = host.open()
    try:
        conn.defineXML("<domain type='qemu'><name>%s</name><memory unit='MiB'>16</memory><vcpu>1</vcpu>"
                       "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices></devices></domain>"
                       % name).create()
    finally:
        conn.close()


def test_two_hosts_evacuate_side_by_side(rig, tmp_path):  # noqa: F811
    prefix = '%s%s-' % (testbed.TEST_PREFIX, uuid.uuid4().hex[:6])
    # Host one moves two VMs a -> b, one at a time (two batches); host two
    # moves two VMs b -> a.  Per-host values live in the inventory (extra
    # vars would win over them).
    plan = {'one': (rig.a, rig.b, [prefix + 'a1', prefix + 'a2']),
            'two': (rig.b, rig.a, [prefix + 'b1', prefix + 'b2'])}
    for source, _dest, vms in plan.values():
        for name in vms:
            _diskless(source, name)
    inventory = tmp_path / 'inventory.json'
    inventory.write_text(json.dumps({'all': {'hosts': {
        host: dict(ansible_connection='local', migrate_source_uri=source.uri, migrate_dest_uri=dest.uri,
                   migrate_vms=vms, migrate_parallel=1, migrate_poll_interval=1)
        for host, (source, dest, vms) in plan.items()}}}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=ansible_module.COLLECTIONS, ANSIBLE_NOCOLOR='1',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_FORKS='5')
    try:
        run = subprocess.run([os.path.join(BIN, 'ansible-playbook'), EVACUATE, '-i', str(inventory),
                              '-e', 'target_hosts=one,two'], capture_output=True, text=True, env=env, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        for _source, dest, vms in plan.values():
            for name in vms:
                assert where(rig, name) == {'a': None, 'b': None, dest.label: 'running'}
        # Each batch started once for both hosts (two batches), not once per
        # host and batch (four): the hosts ran their batches side by side.
        starts = [block for block in run.stdout.split('\n\n') if block.startswith(START_TASK)]
        assert len(starts) == 2, run.stdout
        for block in starts:
            assert sorted(re.findall(r'^changed: \[(\w+)\]', block, re.MULTILINE)) == ['one', 'two'], block
    finally:
        for host in rig.hosts:
            conn = host.open()
            testbed.sweep(conn, prefix)
            conn.close()
