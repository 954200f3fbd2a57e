"""The decommission role, run by ansible-playbook against the real daemon,
under hostile setups: data in external snapshot overlays (in and outside the
pool) and a managed save image, volumes another VM reaches through a
symlinked directory or a hard link, check mode on a running VM, SIGTERM
part-way, and extra vars that arrive as strings.  Each case checks libvirt's
state, the files and the audit record afterwards, and that running the role
again changes nothing."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import libvirt
import pytest

from conftest import REPO, URI, run_module

BIN = os.path.dirname(sys.executable)
PLAYBOOKS = os.path.join(os.path.dirname(__file__), 'playbooks')


def start_playbook(name, *options, **extra):
    """Start playbooks/`name` from this tree with `extra` vars (as JSON, and
    `options` such as -e key=value, where values arrive as strings)."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, '.build', 'collections'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    return subprocess.Popen([os.path.join(BIN, 'ansible-playbook'), os.path.join(PLAYBOOKS, name),
                             '-e', json.dumps(extra)] + list(options),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def playbook(*options, **extra):
    """Start the decommission role with `extra` vars; returns the process."""
    extra = dict(dict(decommission_uri=URI, decommission_confirm=True, decommission_force=True,
                      decommission_shutdown_timeout=30), **extra)
    return start_playbook('decommission.yml', *options, **extra)


def decommission(*options, **extra):
    process = playbook(*options, **extra)
    output = process.communicate(timeout=300)[0]
    return process.returncode, output


def changed(output):
    return int(re.search(r'changed=(\d+)', output.split('PLAY RECAP')[-1]).group(1))


def audit(path):
    with open(path) as handle:
        return json.load(handle)


def volume_paths(conn, prefix):
    pool = conn.storagePoolLookupByName('default')
    pool.refresh(0)
    return sorted(v.path() for v in pool.listAllVolumes(0) if v.name().startswith(prefix))


def converges(audit_path, vms):
    code, output = decommission(decommission_vms=vms, decommission_audit_path=audit_path)
    assert code == 0 and changed(output) == 0, output


def test_every_byte_of_the_vm_is_wiped_and_listed(make_guest, conn, tmp_path):
    g = make_guest()
    assert run_module('domain', xml=g.xml, state='running')['changed']
    g.wait_ready()
    with g.shell() as sh:
        sh.run('echo secret-before > /data/a; sync')
    assert run_module('snapshot', domain=g.name, name='s1', disk_only=True)['changed']  # overlay in the pool
    with g.shell() as sh:
        sh.run('echo secret-in-overlay > /data/b; sync')
    outside = os.path.join(g.workdir, 'outside.qcow2')
    assert run_module('snapshot', domain=g.name, name='s2', disk_only=True,
                      disks=[dict(target='vda', file=outside)])['changed']
    in_pool = os.path.splitext(g.disk_path)[0] + '.s1'
    assert run_module('domain', name=g.name, state='saved')['changed']
    save_image = '/var/lib/libvirt/qemu/save/%s.save' % g.name
    files = [g.disk_path, in_pool, outside, save_image]
    # Open handles keep each file's blocks readable after it is deleted: what
    # they read afterwards is what deleting left on the disk.
    handles = [open(f, 'rb') for f in files]
    try:
        assert all(handle.read(1 << 16).strip(b'\0') for handle in handles)
        audit_path = str(tmp_path / 'audit.json')
        code, output = decommission(decommission_vms=[g.name], decommission_audit_path=audit_path)
        assert code == 0, output
        for path, handle in zip(files, handles):
            handle.seek(0)
            size = os.fstat(handle.fileno()).st_size
            assert size and handle.read().count(0) == size, '%s was deleted but not wiped' % path
    finally:
        for handle in handles:
            handle.close()
    assert g.domain() is None
    assert [f for f in files if os.path.exists(f)] == []
    # The temporary pools over the save directory and the guest's directory are gone again.
    assert not [p for p in conn.listAllStoragePools(0) if p.name().startswith('lifecycle-decommission-')]
    [vm] = audit(audit_path)['runs'][0]['vms']
    listed = dict((v['path'], v) for v in vm['volumes'])
    assert sorted(listed) == sorted(files), listed
    assert listed[save_image]['kind'] == 'managed save image'
    assert listed[outside]['kind'] == 'disk vda'  # the newest overlay is the disk now
    assert listed[in_pool]['kind'] == listed[g.disk_path]['kind'] == 'volume'
    for entry in listed.values():
        assert entry['wipe']['done'] and entry['wipe']['verified'] and entry['deleted'], entry
    assert vm['snapshots_deleted'] == ['s1', 's2'] and vm['volumes_skipped'] == [] and vm['undefined']
    converges(audit_path, [g.name])
    assert len(audit(audit_path)['runs']) == 1


def test_check_mode_on_a_running_vm_changes_nothing(make_guest, conn, tmp_path):
    g = make_guest()
    assert run_module('domain', xml=g.xml, state='running')['changed']
    g.wait_ready()
    audit_path = str(tmp_path / 'audit.json')
    code, output = decommission('--check', decommission_vms=[g.name], decommission_audit_path=audit_path)
    assert code == 0, output
    assert 'plan' in output and os.path.basename(g.disk_path) in output
    assert g.state() == 'running' and os.path.exists(g.disk_path)
    assert volume_paths(conn, g.name) == [g.disk_path]
    assert not os.path.exists(audit_path)
    assert not [p for p in conn.listAllStoragePools(0) if p.name().startswith('lifecycle-decommission-')]


def test_a_volume_shared_through_a_symlinked_directory_or_a_hard_link_is_kept(make_guest, conn, tmp_path):
    doomed, keeper, linker = make_guest('doomed'), make_guest('keeper'), make_guest('linker')
    images = os.path.dirname(doomed.disk_path)
    link_dir = tmp_path / 'images-link'
    link_dir.symlink_to(images)
    # keeper reaches doomed's disk through the symlinked directory.
    shared_via_symlink = str(link_dir / os.path.basename(doomed.disk_path))
    conn.defineXML(keeper.xml.replace(keeper.disk_path, shared_via_symlink))
    # linker's disk is a hard link to doomed's second disk.
    second = conn.storagePoolLookupByName('default').createXML(
        "<volume><name>%s-second.raw</name><capacity unit='MiB'>4</capacity></volume>" % doomed.name, 0).path()
    with open(second, 'r+b') as handle:
        handle.write(b'LLTEST-HARDLINKED-DATA')
    hard_link = os.path.join(linker.workdir, 'hard.raw')
    os.link(second, hard_link)
    conn.defineXML(linker.xml.replace(linker.disk_path, hard_link).replace("type='qcow2'", "type='raw'"))
    conn.defineXML(doomed.xml.replace(
        '</devices>', "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%s'/>"
                      "<target dev='vdb' bus='virtio'/></disk></devices>" % second))
    with open(doomed.disk_path, 'rb') as handle:
        disk_content = handle.read()

    audit_path = str(tmp_path / 'audit.json')
    code, output = decommission(decommission_vms=[doomed.name], decommission_audit_path=audit_path)
    assert code == 0, output
    assert doomed.domain() is None and keeper.domain() is not None and linker.domain() is not None
    with open(doomed.disk_path, 'rb') as handle:
        assert handle.read() == disk_content
    with open(hard_link, 'rb') as handle:
        assert handle.read(22) == b'LLTEST-HARDLINKED-DATA'
    [vm] = audit(audit_path)['runs'][0]['vms']
    skipped = dict((v['path'], v['reason']) for v in vm['volumes_skipped'])
    assert keeper.name in skipped[doomed.disk_path] and vm['volumes'] == []
    assert second in skipped
    converges(audit_path, [doomed.name])


def test_sigterm_part_way_then_a_rerun_finishes(make_guest, conn, tmp_path):
    g = make_guest()
    assert run_module('domain', xml=g.xml, state='defined')['changed']
    big = conn.storagePoolLookupByName('default').createXML(
        "<volume><name>%s-big.raw</name><capacity unit='MiB'>256</capacity></volume>" % g.name, 0).path()
    with open(big, 'r+b') as handle:
        handle.write(os.urandom(1 << 20))
    conn.lookupByName(g.name).undefine()
    conn.defineXML(g.xml.replace(
        '</devices>', "<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%s'/>"
                      "<target dev='vdb' bus='virtio'/></disk></devices>" % big))
    audit_path = str(tmp_path / 'audit.json')
    process = playbook(decommission_vms=[g.name], decommission_audit_path=audit_path)
    # Stop it as soon as the wipe has reached the big disk's data.
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        with open(big, 'rb') as handle:
            if handle.read(1 << 20).count(0) == 1 << 20:
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    interrupted = process.communicate(timeout=120)[0]
    assert process.returncode != 0, interrupted
    assert g.domain() is not None  # undefined only last: the next run finds it
    code, output = decommission(decommission_vms=[g.name], decommission_audit_path=audit_path)
    assert code == 0, output
    assert g.domain() is None and not os.path.exists(big) and not os.path.exists(g.disk_path)
    converges(audit_path, [g.name])


@pytest.mark.parametrize('confirm', ['false', 'no', ''])
def test_confirmation_given_as_a_string(make_guest, tmp_path, confirm):
    g = make_guest()
    assert run_module('domain', xml=g.xml, state='defined')['changed']
    audit_path = str(tmp_path / 'audit.json')
    code, output = decommission(decommission_vms=[g.name], decommission_audit_path=audit_path,
                                decommission_confirm=confirm)
    assert code != 0
    assert 'Nothing was touched' in output or 'decommission_confirm' in output, output
    assert g.state() == 'defined' and os.path.exists(g.disk_path) and not os.path.exists(audit_path)


def test_strings_true_confirm_and_a_vm_named_true(make_guest, conn, tmp_path):
    g = make_guest()
    assert run_module('domain', xml=g.xml, state='defined')['changed']
    audit_path = str(tmp_path / 'audit.json')
    code, output = decommission(decommission_vms=[g.name, 'true'], decommission_audit_path=audit_path,
                                decommission_confirm='true', decommission_wipe_verify='yes')
    assert code == 0, output
    assert g.domain() is None and not os.path.exists(g.disk_path)
    run = audit(audit_path)['runs'][0]
    assert run['not_found'] == ['true'] and run['wipe_verify'] is True
    converges(audit_path, [g.name, 'true'])
    with pytest.raises(libvirt.libvirtError):
        conn.lookupByName(g.name)


def test_nvram_and_a_save_file_outside_the_pools(make_guest, conn, tmp_path):
    g = make_guest()
    nvram_dir, save_dir = tmp_path / 'nvram', tmp_path / 'saves'
    nvram_dir.mkdir()
    save_dir.mkdir()
    nvram = nvram_dir / ('%s_VARS.fd' % g.name)
    save_file = save_dir / 'vm.save'
    neighbour = nvram_dir / 'other-vm_VARS.fd'
    for path in (nvram, save_file, neighbour):
        path.write_bytes(b'LLTEST-SECRET' * 4096)
    conn.defineXML(g.xml.replace('<kernel>', "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd"
                                             "</loader><nvram>%s</nvram><kernel>" % nvram, 1))
    handles = [open(path, 'rb') for path in (nvram, save_file)]
    audit_path = str(tmp_path / 'audit.json')
    try:
        code, output = decommission(decommission_vms=[g.name], decommission_audit_path=audit_path,
                                    decommission_nvram_dir=str(nvram_dir),
                                    decommission_save_files={g.name: [str(save_file)]})
        assert code == 0, output
        for handle in handles:
            handle.seek(0)
            assert handle.read().count(0) == len(b'LLTEST-SECRET' * 4096), handle.name
    finally:
        for handle in handles:
            handle.close()
    assert g.domain() is None and not nvram.exists() and not save_file.exists()
    assert neighbour.read_bytes() == b'LLTEST-SECRET' * 4096  # the temporary pool left it alone
    assert not [p for p in conn.listAllStoragePools(0) if p.name().startswith('lifecycle-decommission-')]
    [vm] = audit(audit_path)['runs'][0]['vms']
    kinds = dict((v['path'], v['kind']) for v in vm['volumes'] if v['wipe']['verified'] and v['deleted'])
    assert kinds[str(nvram)] == 'nvram' and kinds[str(save_file)] == 'save file'
    converges(audit_path, [g.name])
