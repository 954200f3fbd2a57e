"""Storage under hostile input, faults and interruptions (issue 9), against
the real daemon: every case looks at libvirt and at the files on disk
afterwards, and runs the task again to see it converge.

Who uses a volume is decided by identity: a disk reached through a
symlinked directory, a bind mount, a hard link or a `..` path is the same
disk; a base image is used by every overlay above it, in a pool or not, and
by the files a snapshot recorded."""

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time

import libvirt
import pytest

import ansible_module
from conftest import URI, run_module
from storage_helpers import refused, sha256
from storage_helpers import storage  # noqa: F401  pylint: disable=unused-import

POOL_DIR = '/var/lib/libvirt/images'
PATTERN = b'LLTEST-KEEP-ME'


def written(path, pattern=PATTERN):
    """Put `pattern` into the file at `path` (a qcow2 header stays intact)."""
    with open(path, 'r+b') as handle:
        handle.seek(1 << 20)
        handle.write(pattern * 64)
    return sha256(path)


def define(conn, guest, disk_path, start=False):
    """Define `guest` with its data disk named by `disk_path`; start it if asked."""
    domain = conn.defineXML(guest.xml.replace(guest.disk_path, disk_path))
    if start:
        domain.create()
    return domain


def intact(path, digest):
    assert os.path.exists(path) and sha256(path) == digest


def qemu_img(*args):
    subprocess.run(('qemu-img',) + args, check=True, capture_output=True)


# 1. Users by identity ---------------------------------------------------------

def test_running_guest_through_a_symlinked_directory_blocks_wipe_and_delete(storage, conn, make_guest):
    guest = make_guest()
    os.chmod(storage.workdir, 0o755)  # QEMU runs as libvirt-qemu and follows the link
    link = storage.file('images-link')
    os.symlink(POOL_DIR, link)
    via_link = os.path.join(link, os.path.basename(guest.disk_path))
    define(conn, guest, via_link, start=True)
    digest = sha256(guest.disk_path)
    name = os.path.basename(guest.disk_path)
    for _attempt in range(2):  # a re-run is refused the same way
        refused('wipe', 'running domain(s) %s use it' % guest.name, name=name, force=True)
        refused('volume', 'running domain(s) %s use it' % guest.name, name=name, state='absent', force=True,
                wipe='zero', allowed_users=[guest.name])
    intact(guest.disk_path, digest)
    info = run_module('volume_info', name=name)['volumes'][0]
    assert dict(kind='domain', name=guest.name, domain=guest.name, running=True, use='disk', target='vda',
                via='disk vda', path=via_link) in info['users']


def test_defined_guest_through_a_bind_mount_blocks_without_force(storage, conn, make_guest):
    guest = make_guest()
    mountpoint = storage.file('bind')
    os.mkdir(mountpoint)
    subprocess.run(['mount', '--bind', POOL_DIR, mountpoint], check=True)
    try:
        define(conn, guest, os.path.join(mountpoint, os.path.basename(guest.disk_path)))
        digest = written(guest.disk_path)
        name = os.path.basename(guest.disk_path)
        refused('wipe', 'used by domain %s (disk vda)' % guest.name, name=name)
        refused('volume', 'used by domain %s (disk vda)' % guest.name, name=name, state='absent')
        intact(guest.disk_path, digest)
    finally:
        subprocess.run(['umount', mountpoint], check=True)


def test_hard_link_and_dotdot_paths_are_the_same_disk(storage, conn, make_guest):
    first, second = make_guest('a'), make_guest('b')
    hard_link = storage.file('hard-link.qcow2')
    os.link(first.disk_path, hard_link)
    define(conn, first, hard_link)
    # <workdir>/up/../images/<name>: "up" is a symlink to /var/lib/libvirt, so
    # the kernel reads /var/lib/libvirt/images/<name>; the text says <workdir>/images.
    os.symlink(POOL_DIR, storage.file('up'))
    dotdot = os.path.join(storage.file('up'), '..', 'images', os.path.basename(second.disk_path))
    define(conn, second, dotdot)
    for guest in (first, second):
        digest = written(guest.disk_path)
        refused('wipe', 'used by domain %s (disk vda)' % guest.name, path=guest.disk_path)
        refused('volume', 'used by domain %s' % guest.name, name=os.path.basename(guest.disk_path), state='absent')
        intact(guest.disk_path, digest)


def test_allowed_users_frees_only_the_named_stopped_domain(storage, conn, make_guest):
    owner, other = make_guest('owner'), make_guest('other')
    define(conn, owner, owner.disk_path)
    name = os.path.basename(owner.disk_path)
    os.symlink(POOL_DIR, storage.file('link'))
    define(conn, other, os.path.join(storage.file('link'), name))  # the same disk, through a symlink
    digest = written(owner.disk_path)
    refused('wipe', 'used by domain %s (disk vda)' % other.name, name=name, allowed_users=[owner.name])
    intact(owner.disk_path, digest)
    conn.lookupByName(other.name).undefine()
    check = run_module('wipe', check=True, name=name, allowed_users=[owner.name])
    assert check['changed'] is True and sha256(owner.disk_path) == digest
    assert run_module('wipe', name=name, allowed_users=[owner.name])['changed'] is True
    assert PATTERN not in open(owner.disk_path, 'rb').read()
    assert run_module('wipe', name=name, allowed_users=[owner.name])['changed'] is False
    result = run_module('volume', name=name, state='absent', allowed_users=[owner.name])
    assert result['changed'] is True and not os.path.exists(owner.disk_path)
    assert run_module('volume', name=name, state='absent', allowed_users=[owner.name])['changed'] is False


# 2. Backing chains outside the pool -------------------------------------------

def test_base_of_an_external_snapshot_outside_the_pool_is_kept(storage, conn, make_guest):
    guest = make_guest()
    define(conn, guest, guest.disk_path)
    base = os.path.basename(guest.disk_path)
    digest = written(guest.disk_path)
    overlay = storage.file('snap-overlay.qcow2')
    result = run_module('snapshot', domain=guest.name, name='ext', disk_only=True,
                        disks=[dict(target='vda', file=overlay)])
    assert result.get('failed') is not True, result
    for _attempt in range(2):
        refused('volume', 'used by domain %s (backing chain of disk vda)' % guest.name, name=base, state='absent')
        refused('wipe', 'snapshot ext of domain %s' % guest.name, name=base, allowed_users=['someone-else'])
    intact(guest.disk_path, digest)
    users = run_module('volume_info', name=base)['volumes'][0]['users']
    kinds = sorted((user['kind'], user['use'], user['target'], user['via']) for user in users)
    assert ('domain', 'backing', 'vda', 'backing chain of disk vda') in kinds
    assert ('snapshot', 'disk', 'vda', 'saved disk vda') in kinds


def test_base_under_an_overlay_file_no_pool_knows_is_kept(storage, conn, make_guest):
    guest = make_guest()
    base = storage.create_raw('base.img', pattern=PATTERN)
    base_path = storage.path(base)
    digest = sha256(base_path)
    # A stopped domain's disk is an overlay outside any pool, with a relative
    # backing name: libvirt's inactive XML has no chain, the qcow2 header does.
    middle = storage.file('middle.qcow2')
    qemu_img('create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', os.path.relpath(base_path, storage.workdir), middle)
    top = storage.file('top.qcow2')
    qemu_img('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', middle, top)
    define(conn, guest, top)
    refused('volume', 'used by domain %s (backing chain of disk vda)' % guest.name, name=base, state='absent')
    conn.lookupByName(guest.name).undefine()
    # A pool volume whose chain reaches the base through the file outside the pool
    overlay = storage.name('pool-overlay.qcow2')
    qemu_img('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', middle, os.path.join(POOL_DIR, overlay))
    refused('volume', 'overlay volume default/%s' % overlay, name=base, state='absent')
    refused('wipe', 'overlay volume default/%s' % overlay, name=base)
    intact(base_path, digest)
    users = run_module('volume_info', name=base)['volumes'][0]['users']
    assert [(u['kind'], u['name'], u['use'], u['via']) for u in users] == [
        ('volume', 'default/' + overlay, 'overlay', 'backing chain')]
    # The chain below the overlay, as qemu reads it: the file no pool knows, then the pool volume.
    chain = run_module('volume_info', name=overlay)['volumes'][0]['backing_chain']
    assert chain == [dict(path=middle, pool=None, name=None),
                     dict(path=os.path.join(storage.workdir, os.path.relpath(base_path, storage.workdir)),
                          pool='default', name=base)]


# Processes to interrupt ---------------------------------------------------------

def start_module(storage, module, **params):
    """Start lifecycle.libvirt.<module> as Ansible does, without waiting for it."""
    args = storage.file('%s-args.json' % module)
    with open(args, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': dict(params, uri=URI, _ansible_diff=True)}, handle)
    return subprocess.Popen([sys.executable, '-m', ansible_module.OUR_MODULES + module, args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join([ansible_module.COLLECTIONS])))


def finish(process):
    out, err = process.communicate(timeout=300)
    assert 'Traceback' not in out + err, out + err
    return json.loads(out)


def wait_for(condition, what, process, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, 'timed out waiting for %s' % what
        time.sleep(0.01)


def random_file(path, size):
    with open(path, 'wb') as handle:
        for _piece in range(size >> 20):
            handle.write(os.urandom(1 << 20))
    return sha256(path)


def pool_files(directory, name):
    return sorted(entry for entry in os.listdir(directory) if name in entry)


# 4. Uploads are complete or absent ------------------------------------------------

def test_upload_into_a_full_tmpfs_pool_leaves_nothing_and_a_rerun_converges(storage, conn):
    directory, pool = storage.file('tmpfs'), storage.name('tmpfs')
    os.mkdir(directory)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=8m,mode=0755', 'lltest', directory], check=True)
    try:
        assert run_module('pool', name=pool, path=directory)['changed'] is True
        name, big, small = storage.name('image.raw'), storage.file('big.raw'), storage.file('small.raw')
        random_file(big, 12 << 20)
        for _attempt in range(2):  # fails the same way each time, leaving nothing
            result = refused('volume', 'No space left on device', pool=pool, name=name, content_from=big)
            assert not result.get('changed')
            assert pool_files(directory, name) == [] and storage.volume(name, pool) is None
        digest = random_file(small, 4 << 20)
        for changed in (True, False):
            result = run_module('volume', pool=pool, name=name, content_from=small)
            assert result.get('failed') is not True and result['changed'] is changed, result
        assert sha256(os.path.join(directory, name)) == digest and pool_files(directory, name) == [name]
    finally:
        conn.storagePoolLookupByName(pool).destroy()
        conn.storagePoolLookupByName(pool).undefine()
        subprocess.run(['umount', directory], check=True)


def test_upload_killed_by_sigterm_leaves_no_volume_and_a_rerun_uploads(storage):
    name, source = storage.name('big.raw'), storage.file('source.raw')
    digest = random_file(source, 192 << 20)
    process = start_module(storage, 'volume', name=name, content_from=source)
    wait_for(lambda: any(os.stat(os.path.join(POOL_DIR, f)).st_blocks > 2048 for f in pool_files(POOL_DIR, name)),
             'the upload to start', process)
    process.send_signal(signal.SIGTERM)
    result = finish(process)
    assert result['failed'] is True and 'Interrupted by SIGTERM' in result['msg'] and result['changed'] is False
    assert pool_files(POOL_DIR, name) == [] and storage.volume(name) is None
    result = run_module('volume', name=name, content_from=source)
    assert result['changed'] is True and sha256(storage.path(name)) == digest
    assert run_module('volume', name=name, content_from=source)['changed'] is False


def test_leftover_of_a_killed_upload_is_removed_and_the_upload_redone(storage):
    name, source = storage.name('disk.raw'), storage.file('source.raw')
    digest = random_file(source, 2 << 20)
    # What SIGKILL (or a killed daemon) leaves: a temporary volume, half written.
    leftover = storage.default.createXML("<volume><name>.%s.partial-dead</name><capacity>%d</capacity>"
                                         "<target><format type='raw'/></target></volume>" % (name, 2 << 20), 0)
    with open(leftover.path(), 'r+b') as handle:
        handle.write(open(source, 'rb').read(1 << 20))
    result = run_module('volume', name=name, content_from=source)
    assert result['changed'] is True and '.%s.partial-dead' % name in str(result['warnings'])
    assert pool_files(POOL_DIR, name) == [name] and sha256(storage.path(name)) == digest
    assert run_module('volume', name=name, content_from=source)['changed'] is False


def test_a_partial_volume_an_interrupted_copy_left_is_uploaded_again(storage):
    """Where libvirt copies the verified upload into place (a remote URI), a
    daemon killed during the copy leaves part of the content under the name
    next to the temporary volume: the next run sees both and redoes it."""
    name, source = storage.name('copied.raw'), storage.file('source.raw')
    digest = random_file(source, 2 << 20)

    def interrupted_copy():
        for volume_name, length in ((name, 1 << 20), ('.%s.partial-dead' % name, 2 << 20)):
            volume = storage.default.createXML("<volume><name>%s</name><capacity>%d</capacity><target>"
                                               "<format type='raw'/></target></volume>" % (volume_name, 2 << 20), 0)
            with open(volume.path(), 'r+b') as handle:
                handle.write(open(source, 'rb').read(length))
    interrupted_copy()
    check = run_module('volume', check=True, name=name, content_from=source)
    assert check['changed'] is True and check['actions'] == ['delete', 'upload'] and sha256(storage.path(name)) != digest
    result = run_module('volume', name=name, content_from=source)
    assert result['actions'] == ['delete', 'upload'] and result['diff'] == check['diff']
    assert 'uploading it again' in str(result['warnings'])
    assert pool_files(POOL_DIR, name) == [name] and sha256(storage.path(name)) == digest
    assert run_module('volume', name=name, content_from=source)['changed'] is False
    # A complete volume next to a leftover is kept; only the leftover goes.
    storage.default.createXML("<volume><name>.%s.partial-late</name><capacity>1024</capacity>"
                              "<target><format type='raw'/></target></volume>" % name, 0)
    result = run_module('volume', name=name, content_from=source)
    assert result['changed'] is False and 'partial-late' in str(result['warnings'])
    assert pool_files(POOL_DIR, name) == [name] and sha256(storage.path(name)) == digest


def test_concurrent_runs_of_the_same_volume_end_in_one_volume(storage):
    name, source = storage.name('shared.raw'), storage.file('source.raw')
    digest = random_file(source, 8 << 20)
    processes = [start_module(storage, 'volume', name=name, content_from=source) for _run in range(3)]
    results = [finish(process) for process in processes]
    assert [r.get('failed', False) for r in results] == [False] * 3, results
    assert sorted(r['changed'] for r in results) == [False, False, True]
    assert pool_files(POOL_DIR, name) == [name] and sha256(storage.path(name)) == digest
    assert run_module('volume', name=name, content_from=source)['changed'] is False


# 5. download_to writes only files of its own --------------------------------------

@pytest.mark.parametrize('kind', ['device node', 'directory', 'volume through a symlink', 'disk of a domain'])
def test_download_to_refuses_what_it_must_not_replace(storage, conn, make_guest, kind):
    name = storage.create_raw('data.raw', pattern=PATTERN)
    volume_digest = sha256(storage.path(name))
    target, text = storage.file('target'), 'it is never replaced'
    if kind == 'device node':
        os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    elif kind == 'directory':
        os.mkdir(target)
        text = 'is a directory'
    elif kind == 'volume through a symlink':
        os.symlink(POOL_DIR, storage.file('link'))
        target, text = os.path.join(storage.file('link'), name), 'it is never overwritten'
    else:
        guest = make_guest()
        os.link(guest.disk_path, target)
        define(conn, guest, target)
        text = 'domain %s (disk vda)' % guest.name
    before = os.lstat(target)
    for _attempt in range(2):
        refused('volume', text, name=name, download_to=target)
    after = os.lstat(target)
    fields = ('st_mode', 'st_ino', 'st_rdev', 'st_mtime')
    assert [getattr(after, field) for field in fields] == [getattr(before, field) for field in fields]
    assert sha256(storage.path(name)) == volume_digest
    assert [f for f in os.listdir(os.path.dirname(os.path.realpath(target))) if '.download-' in f] == []


def test_download_killed_by_sigterm_leaves_no_temporary_file(storage):
    name, target = storage.name('big.raw'), storage.file('backup.raw')
    source = storage.file('source.raw')
    digest = random_file(source, 192 << 20)
    assert run_module('volume', name=name, content_from=source)['changed'] is True
    process = start_module(storage, 'volume', name=name, download_to=target)
    wait_for(lambda: any('.download-' in f and os.path.getsize(storage.file(f)) > 0
                         for f in os.listdir(storage.workdir)), 'the download to start', process)
    process.send_signal(signal.SIGTERM)
    result = finish(process)
    assert result['failed'] is True and 'Interrupted by SIGTERM' in result['msg'], result
    assert [f for f in os.listdir(storage.workdir) if 'backup' in f] == []
    # A leftover of a run killed with SIGKILL (no one holds its lock) goes on the next run.
    stale = storage.file('.backup.raw.download-stale1')
    open(stale, 'wb').write(b'partial')
    result = run_module('volume', name=name, download_to=target)
    assert result['changed'] is True and stale in str(result['warnings']) and not os.path.exists(stale)
    assert sha256(target) == digest
    assert run_module('volume', name=name, download_to=target)['changed'] is False


# Wipe interrupted ------------------------------------------------------------------

def start_a_long_wipe(storage, label, size):
    """A fully allocated volume with data at its start, and a wipe module
    process that has begun to wipe it."""
    name = storage.name(label)
    volume = storage.default.createXML("<volume><name>%s</name><capacity>%d</capacity><allocation>%d</allocation>"
                                       "<target><format type='raw'/></target></volume>" % (name, size, size), 0)
    with open(volume.path(), 'r+b') as handle:
        handle.write(PATTERN * 64)
    process = start_module(storage, 'wipe', name=name)

    def started():
        with open(volume.path(), 'rb') as handle:
            return PATTERN not in handle.read(4096)
    wait_for(started, 'the wipe to start', process)
    return name, process


def test_wipe_interrupted_by_sigterm_goes_on_and_a_rerun_waits_for_it(storage):
    name, process = start_a_long_wipe(storage, 'large.raw', 1 << 30)
    process.send_signal(signal.SIGTERM)
    result = finish(process)
    assert result['failed'] is True and result['changed'] is True and result['wipe_running'] is True
    assert 'goes on in libvirtd' in result['msg'] and 'Run the task again' in result['msg']
    result = run_module('wipe', name=name, verify=True)
    assert result.get('failed') is not True and result['verified'] is True, result
    assert run_module('wipe', name=name)['changed'] is False


def test_a_step_libvirt_refuses_is_not_a_change(storage):
    name = storage.create_raw('trim.raw', pattern=PATTERN)
    result = refused('wipe', "'trim' algorithm not supported", name=name, algorithm='trim')
    assert result['changed'] is False and result['actions'] == []
    assert PATTERN in open(storage.path(name), 'rb').read()


# Smaller: YAML-typed modes, pool paths, capacities -----------------------------------

def test_yaml_integer_mode_is_the_mode_as_for_the_file_module(storage):
    name = storage.name('mode.raw')
    result = run_module('volume', name=name, capacity='1M', mode=420)  # YAML's unquoted 0644
    assert result['changed'] is True and result['mode'] == '0644'
    assert stat.S_IMODE(os.stat(storage.path(name)).st_mode) == 0o644
    assert run_module('volume', name=name, mode=420)['changed'] is False
    assert run_module('volume', name=name, mode='0644')['changed'] is False
    other = storage.name('bad-mode.raw')
    refused('volume', 'Invalid mode 5000', name=other, capacity='1M', mode=5000)
    assert storage.volume(other) is None


@pytest.mark.parametrize('kind', ['relative', 'regular file', 'under a regular file'])
def test_bad_pool_paths_leave_no_pool(storage, conn, kind):
    name = storage.name('pool')
    open(storage.file('file'), 'w').close()
    path, text = {
        'relative': ('lltest-relative-pool', 'a pool path must be absolute'),
        'regular file': (storage.file('file'), 'exists and is not a directory'),
        'under a regular file': (os.path.join(storage.file('file'), 'sub'), 'was undefined again'),
    }[kind]
    for _attempt in range(2):
        result = refused('pool', text, name=name, path=path)
        assert not result.get('changed')
        assert name not in [p.name() for p in conn.listAllStoragePools(0)]
    assert not os.path.exists('/lltest-relative-pool') and os.path.isfile(storage.file('file'))


def test_capacities_that_could_never_converge_are_refused(storage):
    source = storage.create_raw('source.raw', 4 << 20, PATTERN)
    cases = [(dict(clone_from=source, capacity='1M'), 'is smaller than clone_from'),
             (dict(backing_volume=source, capacity='2M'), 'is smaller than backing_volume'),
             (dict(capacity=0, format='qcow2'), 'a qcow2 volume of capacity 0')]
    for params, text in cases:
        name = storage.name('new.img')
        for check in (True, False):
            result = run_module('volume', check=check, name=name, **params)
            assert result['failed'] is True and text in result['msg'] and not result.get('changed'), result
        assert storage.volume(name) is None
    result = run_module('volume', name=storage.name('clone.raw'), clone_from=source, capacity='4M')
    assert result['changed'] is True and result['capacity'] == 4 << 20
    assert run_module('volume', name=storage.name('clone.raw'), clone_from=source, capacity='4M')['changed'] is False


def test_delete_while_a_wipe_runs_waits_for_it_instead_of_failing(storage):
    # The wipe runs in libvirtd at disk speed: when it ends before the delete
    # reaches libvirt, the case is tried again with a volume that takes longer.
    for size_gib in (1, 4, 8):
        name, process = start_a_long_wipe(storage, 'busy-%d.raw' % size_gib, size_gib << 30)
        result = run_module('volume', name=name, state='absent', wipe='zero')
        assert result.get('failed') is not True and result['changed'] is True, result
        assert 'still in use' not in str(result)
        assert storage.volume(name) is None and pool_files(POOL_DIR, name) == []
        assert finish(process)['changed'] is True  # the first wipe ended normally
        assert run_module('volume', name=name, state='absent')['changed'] is False
        if 'Waited' in str(result.get('warnings')):
            return
    pytest.fail('every wipe ended before the delete reached libvirt; the wait was never exercised')


def test_volume_info_lists_every_volume_while_another_client_deletes_some(storage):
    kept = [storage.create_raw('kept-%d.raw' % index) for index in range(4)]
    stop = threading.Event()

    def create_and_delete_again_and_again():
        pool = libvirt.open(URI).storagePoolLookupByName('default')
        while not stop.is_set():
            for index in range(8):
                pool.createXML("<volume><name>%s</name><capacity>4096</capacity></volume>"
                               % storage.name('churn-%d.raw' % index), 0)
            for volume in pool.listAllVolumes(0):
                if volume.name().startswith(storage.name('churn-')):
                    volume.delete(0)

    churn = threading.Thread(target=create_and_delete_again_and_again)
    churn.start()
    try:
        listings = [run_module('volume_info') for _run in range(6)]
    finally:
        stop.set()
        churn.join()
    for listing in listings:
        assert not listing.get('failed'), listing['msg']
        assert set(kept) <= set(volume['name'] for volume in listing['volumes'])
