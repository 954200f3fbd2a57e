"""The example AWX/AAP project (examples/awx-project): its wrapper playbooks
run by ansible-playbook with the collection installed from its tarball, every
input an extra var given as text the way a survey gives it ("a,b", one name
per line, YAML or JSON in a textarea, "true", "2"), against the real daemon
(and the two-host rig for the evacuation).  Each job's set_stats data - what
AWX hands to the next job of a workflow - is read from the custom stats the
default callback prints, and checked against libvirt."""

import json
import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest
import yaml
from lxml import etree
from packaging.specifiers import SpecifierSet

import collection  # tests/testbed, on the path through conftest
import guest
import testbed
from conftest import REPO
from rig_fixture import rig, rig_guest_factory, where  # noqa: F401  pylint: disable=unused-import

BIN = os.path.dirname(sys.executable)
EXAMPLE = os.path.join(REPO, 'examples', 'awx-project')


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    """The example project as AWX checks it out, with the collection its
    collections/requirements.yml asks for installed next to it."""
    workdir = tmp_path_factory.mktemp('awx')
    checkout = workdir / 'project'
    shutil.copytree(EXAMPLE, checkout)
    return checkout, collection.build_and_install(str(workdir))


def job(project, playbook, extra_vars, tmp_path):
    """Run a job template's playbook with its extra vars; return the process
    and the set_stats data of the run."""
    checkout, collections = project
    extra_file = tmp_path / ('%s-extra-vars.json' % playbook)
    extra_file.write_text(json.dumps(extra_vars))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR='1',
               ANSIBLE_SHOW_CUSTOM_STATS='true', ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    run = subprocess.run([os.path.join(BIN, 'ansible-playbook'), str(checkout / (playbook + '.yml')),
                          '-e', '@%s' % extra_file], capture_output=True, text=True, env=env, check=False)
    stats = [json.loads(line.split('RUN: ', 1)[1]) for line in run.stdout.splitlines() if line.startswith('\tRUN: ')]
    return run, (stats[0] if stats else None)


def test_requirements_ask_for_this_collection():
    with open(os.path.join(EXAMPLE, 'collections', 'requirements.yml')) as handle:
        [wanted] = yaml.safe_load(handle)['collections']
    with open(os.path.join(REPO, 'galaxy.yml')) as handle:
        version = yaml.safe_load(handle)['version']
    assert wanted['name'] == 'lifecycle.libvirt'
    assert version in SpecifierSet(wanted['version'])


@pytest.fixture
def names(conn):
    """A prefix for this test's objects; they are all removed afterwards."""
    prefix = '%s%s-' % (testbed.TEST_PREFIX, uuid.uuid4().hex[:6])
    yield prefix
    testbed.sweep(conn, prefix)


def volume_names(conn):
    pool = conn.storagePoolLookupByName('default')
    pool.refresh(0)
    return set(pool.listVolumes())


def two_vms(conn, names, workdir):
    """A base image and the YAML text of two VMs on it (a survey textarea):
    the first boots and is waited for, the second stays defined."""
    vm1, vm2 = names + 'awx1', names + 'awx2'
    base = names + 'base.qcow2'
    conn.storagePoolLookupByName('default').createXML(
        "<volume><name>%s</name><capacity unit='MiB'>16</capacity><target><format type='qcow2'/></target></volume>"
        % base, 0)
    logs = workdir / 'serial'
    logs.mkdir()
    os.chmod(logs, 0o777)  # QEMU (libvirt-qemu) writes the serial log
    on_base = dict(memory_mib=256, base_volume=base, kernel=str(guest.GUEST_DIR / 'vmlinuz'),
                   initrd=str(guest.GUEST_DIR / 'initrd.img'))
    text = yaml.safe_dump([
        dict(name=vm1, **on_base, cmdline='console=ttyS0 quiet', serial_log=str(logs / 'awx1.log'),
             ready_marker='LIFECYCLE-READY'),
        dict(name=vm2, **on_base, state='defined'),
    ], sort_keys=False)
    return vm1, vm2, base, text


def test_provision_with_survey_text(project, conn, domain_type, names, tmp_path):
    vm1, vm2, base, vms_yaml = two_vms(conn, names, tmp_path)
    provision_vars = dict(provision_vms=vms_yaml, provision_domain_type=domain_type, provision_wait_timeout='150')

    run, stats = job(project, 'provision', provision_vars, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert stats == {'provision_summary': {'provisioned': [vm1, vm2], 'changed': [vm1, vm2], 'unchanged': []}}
    assert conn.lookupByName(vm1).isActive() and not conn.lookupByName(vm2).isActive()
    pool = conn.storagePoolLookupByName('default')
    pool.refresh(0)
    for name in (vm1, vm2):
        root = etree.fromstring(pool.storageVolLookupByName(name + '-root.qcow2').XMLDesc(0))
        assert root.findtext('backingStore/path') == pool.storageVolLookupByName(base).path()

    # The same list as JSON text: nothing left to do.
    run, stats = job(project, 'provision', dict(provision_vars, provision_vms=json.dumps(yaml.safe_load(vms_yaml))),
                     tmp_path)
    assert run.returncode == 0 and 'changed=0' in run.stdout, run.stdout + run.stderr
    assert stats == {'provision_summary': {'provisioned': [vm1, vm2], 'changed': [], 'unchanged': [vm1, vm2]}}


def test_snapshot_and_decommission_with_survey_text(project, conn, domain_type, names, tmp_path):
    vm1, vm2, base, vms_yaml = two_vms(conn, names, tmp_path)
    run, stats = job(project, 'provision', dict(provision_vms=vms_yaml, provision_domain_type=domain_type), tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr

    # A survey text field: the names comma-separated.
    snapshot_vars = dict(snapshot_vms='%s, %s' % (vm1, vm2), snapshot_name_prefix=names, snapshot_name=names + 's1')
    run, stats = job(project, 'snapshot', snapshot_vars, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert stats == {'snapshot_summary': {'taken': [vm1, vm2], 'unchanged': [], 'reverted': [], 'failed': [],
                                          'snapshots': {vm1: names + 's1', vm2: names + 's1'},
                                          'deleted': {vm1: [], vm2: []}}}
    # A textarea, one name per line; the retention count as a string.
    run, stats = job(project, 'snapshot', dict(snapshot_vars, snapshot_vms='%s\n%s\n' % (vm1, vm2),
                                               snapshot_name=names + 's2', snapshot_keep='1'), tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = stats['snapshot_summary']
    assert (summary['taken'], summary['failed']) == ([vm1, vm2], [])
    assert summary['deleted'] == {vm1: [names + 's1'], vm2: [names + 's1']}
    for name in (vm1, vm2):
        assert conn.lookupByName(name).snapshotListNames(0) == [names + 's2']

    audit = tmp_path / 'audit.json'
    decommission_vars = dict(decommission_vms='%s\n%s' % (vm1, vm2), decommission_confirm='true',
                             decommission_pools='default', decommission_force='true',
                             decommission_shutdown_timeout='30', decommission_audit_path=str(audit))
    run, stats = job(project, 'decommission', decommission_vars, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    summary = stats['decommission_summary']
    assert sorted(summary['decommissioned']) == [vm1, vm2]
    assert (summary['failed'], summary['skipped']) == ([], [])
    assert summary['audit'] == json.loads(audit.read_text())['runs'][-1]
    assert sorted(vm['name'] for vm in summary['audit']['vms']) == [vm1, vm2]
    assert not {vm1, vm2} & set(conn.listDefinedDomains() + [domain.name() for domain in conn.listAllDomains(0)])
    left = volume_names(conn)
    assert base in left and not {vm1 + '-root.qcow2', vm2 + '-root.qcow2'} & left

    # Again: both are gone already - skipped, and no new audit record.
    run, stats = job(project, 'decommission', decommission_vars, tmp_path)
    assert run.returncode == 0 and 'changed=0' in run.stdout, run.stdout + run.stderr
    assert stats == {'decommission_summary': {'decommissioned': [], 'failed': [], 'skipped': [vm1, vm2],
                                              'audit': None}}
    assert len(json.loads(audit.read_text())['runs']) == 1


def test_bad_survey_text_is_refused_before_anything_is_made(project, conn, names, tmp_path):
    run, stats = job(project, 'provision', dict(provision_vms='- name: %sbad\n  memory_mib: [256' % names), tmp_path)
    assert run.returncode != 0
    assert 'survey_data expects YAML or JSON text' in run.stdout, run.stdout
    assert 'Traceback' not in run.stdout + run.stderr
    run, stats = job(project, 'provision', dict(provision_vms='- name: %sbad\n  memroy_mib: 256' % names), tmp_path)
    assert run.returncode != 0
    assert 'memroy_mib' in run.stdout, run.stdout
    assert stats == {'provision_summary': {}}
    assert not [name for name in conn.listDefinedDomains() if name.startswith(names)]
    assert not [name for name in volume_names(conn) if name.startswith(names)]


def test_evacuate_with_survey_text(project, rig, rig_guest_factory, tmp_path):  # noqa: F811
    guests = [rig_guest_factory('evac1'), rig_guest_factory('evac2')]
    for vm in guests:
        vm.start(rig.a)
    names = [vm.name for vm in guests]
    run, stats = job(project, 'evacuate', dict(
        migrate_source_uri=rig.a.uri, migrate_dest_uri=rig.b.uri,
        migrate_vms=','.join(names),
        # A textarea with YAML: the rig's shared directory is on a local file
        # system; at 32 MiB/s the guests' memory takes seconds to move, so the
        # first look at the jobs finds them running.
        migrate_options='unsafe: true\nlive: true\nbandwidth: 32\n',
        migrate_parallel='2', migrate_continue_on_check_failure='false'), tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert stats == {'migrate_summary': {'moved': names, 'skipped': [], 'failed': []}}
    for name in names:
        assert where(rig, name) == {'a': None, 'b': 'running'}
    # The job log: each look at a running migration is a retry event; the
    # default timeout (3600 s) allows 3600 / 15 looks, one every 15 s - not
    # 1800, one every 2 s.
    retries_left = re.findall(r'FAILED - RETRYING: \[localhost\]: Wait for the migrations of this batch '
                              r'\((\d+) retries left\)', run.stdout)
    assert retries_left and retries_left[0] == '240', run.stdout
