"""Storage under hostile input, faults and interruptions (issue 9), against
the real daemon: every case looks at libvirt and at the files on disk
afterwards, and runs the task again to see it converge.

Who uses a volume is decided by identity: a disk reached through a
symlinked directory, a bind mount, a hard link or a `..` path is the same
disk; a base image is used by every overlay above it, in a pool or not, and
by the files a snapshot recorded."""

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
    assert dict(kind='domain', name=guest.name, domain=guest.name, running=True, via='disk vda',
                path=via_link) in info['users']


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
    kinds = sorted((user['kind'], user['via']) for user in users)
    assert ('domain', 'backing chain of disk vda') in kinds and ('snapshot', 'saved disk vda') in kinds


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
    assert [(u['kind'], u['name'], u['via']) for u in users] == [('volume', 'default/' + overlay, 'backing chain')]
