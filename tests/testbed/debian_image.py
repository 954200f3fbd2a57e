"""A small Debian 12 cloud image for the end-to-end test (`make e2e`).

    python tests/testbed/debian_image.py build    # build or reuse; prints the path

Built as root from Debian's own packages, the way a distribution's cloud
image is: debootstrap (minbase) plus the kernel, systemd, cloud-init
(NoCloud datasource only: it reads the seed volume labelled ``cidata``),
openssh-server and qemu-guest-agent; an MBR disk with one ext4 partition
that boots on its own with extlinux; converted to a compressed qcow2.

The image is cached in ``.cache/debian-image/<recipe hash>/`` and rebuilt
only when the recipe (the packages, the files written into the tree, the
build steps, the mirror) changes.  It is built in a temporary directory next
to it and renamed into place when complete, so an interrupted build leaves
nothing that looks finished.  Downloaded packages are kept in
``.cache/debian-image/debs`` for the next build.

Only the extlinux install needs a block device: the partition is populated
without one (``mke2fs -d`` at the partition's offset), then mounted through a
loop device for the seconds ``extlinux --install`` takes.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_DIR / '.cache' / 'debian-image'
SUITE = 'bookworm'
# The generic kernel, as Debian's "generic" cloud image has: the cloud
# flavour (genericcloud) has no AHCI driver, so it does not see a seed
# CD-ROM on the SATA bus, where lifecycle.libvirt.domain puts CD-ROMs.
# cloud-init pulls in python3 and isc-dhcp-client; it renders the network for
# systemd-networkd (iproute2) and restarts systemd-resolved with it;
# cloud-guest-utils (growpart) grows the root partition to the disk.
PACKAGES = [
    'linux-image-amd64', 'initramfs-tools', 'systemd', 'systemd-sysv', 'systemd-resolved', 'udev', 'dbus',
    'cloud-init', 'cloud-guest-utils', 'openssh-server', 'qemu-guest-agent', 'sudo',
    'iproute2', 'netbase', 'e2fsprogs', 'fdisk', 'extlinux', 'syslinux-common',
]
# The initramfs only has to find the root disk: virtio, ext4 and its crc32c
# (MODULES=most would make udev load hundreds of modules at each boot).
INITRAMFS_FILES = {
    'etc/initramfs-tools/conf.d/lltest.conf': 'MODULES=list\n',
    'etc/initramfs-tools/modules': 'virtio_pci\nvirtio_blk\next4\ncrc32c_generic\n',
}
PARTITION_OFFSET = 1024 * 1024  # the first partition starts at sector 2048
IMAGE_NAME = 'debian-12-lltest.qcow2'
ROOT_LABEL = 'debian-root'

# Files written into the root filesystem after debootstrap (path -> content).
CLOUD_CFG = """\
# The NoCloud seed (a volume labelled cidata) is the only source of metadata:
# no network datasource is probed, which would time out on a libvirt NAT.
datasource_list: [NoCloud, None]
# C.UTF-8 is built in: cloud-init's locale module need not run locale-gen.
locale: C.UTF-8
system_info:
  network:
    renderers: [networkd]
    activators: [networkd]
"""
FILES = {
    'etc/cloud/cloud.cfg.d/90_lltest.cfg': CLOUD_CFG,
    'etc/default/locale': 'LANG=C.UTF-8\n',
    'etc/hosts': '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n',
    # Each guest gets its own machine-id on first boot.
    'etc/machine-id': '',
}
# Left out of the image: per-machine identity, caches and documentation.
REMOVED = ['etc/hostname', 'etc/ssh/ssh_host_*', 'var/lib/dbus/machine-id', 'var/cache/apt/*.bin',
           'var/cache/apt/archives/*.deb', 'var/lib/apt/lists/*_Packages', 'usr/share/doc/*', 'usr/share/man/*',
           'usr/share/locale/*', 'var/log/*.log']


def debian_mirror() -> str:
    """The Debian mirror apt uses on this host (for SUITE, component main)."""
    sources = sorted(glob.glob('/etc/apt/sources.list.d/*.sources'))
    for path in sources:
        for stanza in Path(path).read_text().split('\n\n'):
            fields = dict(line.split(':', 1) for line in stanza.splitlines()
                          if ':' in line and not line.startswith(('#', ' ')))
            if SUITE in fields.get('Suites', '').split() and 'main' in fields.get('Components', '').split():
                return fields['URIs'].split()[0]
    for path in ['/etc/apt/sources.list'] + sorted(glob.glob('/etc/apt/sources.list.d/*.list')):
        if not os.path.exists(path):
            continue
        for line in Path(path).read_text().splitlines():
            words = line.split('#', 1)[0].split()
            if len(words) >= 4 and words[0] == 'deb' and words[2] == SUITE and 'main' in words[3:]:
                return next(word for word in words[1:] if not word.startswith('['))
    raise RuntimeError('no apt source for Debian %s main in /etc/apt' % SUITE)


def _run(*command, **kwargs):
    subprocess.run(command, check=True, **kwargs)


@contextlib.contextmanager
def _mounts(*mounts):
    """Mount each (source, target, options) in turn; unmount them all afterwards."""
    done = []
    try:
        for source, target, options in mounts:
            _run('mount', *options, source, str(target))
            done.append(target)
        yield
    finally:
        for target in reversed(done):
            if subprocess.run(['umount', str(target)], check=False).returncode != 0:
                subprocess.run(['umount', '--lazy', str(target)], check=False)


def _system_mounts(tree: Path):
    """/dev, /proc and /sys bound into `tree`, for the commands run in it with chroot."""
    return [('/' + api, tree / api, ['--bind']) for api in ('dev', 'proc', 'sys')]


def _mounts_under(path: Path) -> list:
    with open('/proc/self/mounts') as handle:
        targets = [line.split()[1] for line in handle]
    return [target for target in targets if target == str(path) or target.startswith(str(path) + '/')]


def _write(root: Path, files: dict) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def _bootstrap(root: Path, mirror: str) -> None:
    """debootstrap's minimal base, then PACKAGES with apt in the tree: apt,
    unlike debootstrap, resolves virtual packages and skips recommends."""
    debs = CACHE_DIR / 'debs'
    (debs / 'partial').mkdir(parents=True, exist_ok=True)
    result = subprocess.run(['debootstrap', '--variant=minbase', '--cache-dir=%s' % debs, SUITE, str(root), mirror],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        log = root / 'debootstrap' / 'debootstrap.log'
        raise RuntimeError('debootstrap failed (exit %d): %s\n%s' % (
            result.returncode, result.stderr.strip()[-2000:], log.read_text()[-3000:] if log.exists() else ''))
    _write(root, INITRAMFS_FILES)  # before the kernel's package makes the initramfs
    # No service starts in the tree while packages are installed.
    policy = root / 'usr/sbin/policy-rc.d'
    policy.write_text('#!/bin/sh\nexit 101\n')
    policy.chmod(0o755)
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive', LC_ALL='C.UTF-8')
    with _mounts(*_system_mounts(root), (str(debs), root / 'var/cache/apt/archives', ['--bind'])):
        _run('chroot', str(root), 'apt-get', 'update', '-qq', env=env, stdout=subprocess.DEVNULL)
        _run('chroot', str(root), 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', *PACKAGES,
             env=env, stdout=subprocess.DEVNULL)
    policy.unlink()


def _configure(root: Path, root_uuid: str) -> str:
    """Make the tree a cloud image; return the kernel release it boots."""
    _write(root, FILES)
    (root / 'etc/fstab').write_text('UUID=%s / ext4 errors=remount-ro 0 1\n' % root_uuid)
    kernels = sorted(path.name[len('vmlinuz-'):] for path in (root / 'boot').glob('vmlinuz-*'))
    if len(kernels) != 1:
        raise RuntimeError('expected one kernel in /boot, found %s' % kernels)
    release = kernels[0]
    with _mounts(*_system_mounts(root)):
        _run('chroot', str(root), 'systemctl', 'enable', '--quiet', 'systemd-networkd.service')
        # The seed's network config (or cloud-init's DHCP fallback) is all the
        # guest needs; waiting for every link would stall boot without a NIC.
        _run('chroot', str(root), 'systemctl', 'mask', '--quiet', 'systemd-networkd-wait-online.service')
    (root / 'boot/extlinux').mkdir(exist_ok=True)
    (root / 'boot/extlinux/extlinux.conf').write_text(
        'DEFAULT debian\nPROMPT 0\nTIMEOUT 0\n'
        'LABEL debian\n  LINUX /boot/vmlinuz-{release}\n  INITRD /boot/initrd.img-{release}\n'
        '  APPEND root=UUID={uuid} ro console=ttyS0,115200 net.ifnames=0\n'.format(release=release, uuid=root_uuid))
    for pattern in REMOVED:
        for path in glob.glob(str(root / pattern)):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
    return release


def _make_disk(root: Path, disk: Path, root_uuid: str) -> None:
    """An MBR disk with one bootable ext4 partition holding `root`, with extlinux."""
    used = int(subprocess.run(['du', '-sxm', str(root)], check=True, capture_output=True,
                              text=True).stdout.split()[0])
    # Room for the first boot (cloud-init, logs, host keys); growpart and
    # resize2fs grow it to the VM's root disk.
    size_mib = max(2048, (used * 3 // 2 + 255) // 256 * 256)
    with open(disk, 'wb') as handle:
        handle.truncate(size_mib * 1024 * 1024)
    _run('sfdisk', '--quiet', str(disk), input='label: dos\nstart=%d, type=83, bootable\n'
         % (PARTITION_OFFSET // 512), text=True)
    # extlinux cannot read ext4's 64bit layout.
    _run('mke2fs', '-q', '-t', 'ext4', '-O', '^64bit', '-L', ROOT_LABEL, '-U', root_uuid, '-d', str(root),
         '-E', 'offset=%d' % PARTITION_OFFSET, str(disk), '%dM' % (size_mib - PARTITION_OFFSET // 2 ** 20))
    mountpoint = disk.parent / 'mnt'
    mountpoint.mkdir()
    # extlinux finds the partition's device through /proc and /sys.
    with _mounts((str(disk), mountpoint, ['-o', 'loop,offset=%d' % PARTITION_OFFSET]),
                 *_system_mounts(mountpoint)):
        _run('chroot', str(mountpoint), 'extlinux', '--install', '/boot/extlinux', stderr=subprocess.DEVNULL)
        mbr = (mountpoint / 'usr/lib/EXTLINUX/mbr.bin').read_bytes()
    mountpoint.rmdir()
    with open(disk, 'r+b') as handle:
        handle.write(mbr[:440])  # the boot code; the partition table after it stays


def recipe_hash(mirror: str) -> str:
    """What decides the image: the packages, the files, the build steps and the mirror."""
    recipe = [SUITE, mirror, PACKAGES, INITRAMFS_FILES, FILES, REMOVED, PARTITION_OFFSET, IMAGE_NAME, ROOT_LABEL]
    recipe += [inspect.getsource(step) for step in (_bootstrap, _configure, _make_disk)]
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def build() -> dict:
    """Build the image unless the cache holds this recipe's; return its description
    (path, sha256, kernel, mirror, build_seconds) and whether it was `cached`."""
    if os.geteuid() != 0:
        raise RuntimeError('the Debian image is built as root (debootstrap, chroot, mount)')
    if shutil.which('debootstrap') is None:
        raise RuntimeError('debootstrap is missing: apt-get install debootstrap')
    mirror = debian_mirror()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    final = CACHE_DIR / recipe_hash(mirror)
    with open(CACHE_DIR / '.lock', 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another build of the same cache waits
        if (final / 'image.json').exists():
            return dict(json.loads((final / 'image.json').read_text()), path=str(final / IMAGE_NAME), cached=True)
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix='.build.', dir=CACHE_DIR))
        try:
            root = work / 'root'
            _bootstrap(root, mirror)
            root_uuid = str(uuid.uuid4())
            release = _configure(root, root_uuid)
            raw = work / 'disk.raw'
            _make_disk(root, raw, root_uuid)
            shutil.rmtree(root)
            image = work / IMAGE_NAME
            _run('qemu-img', 'convert', '-c', '-f', 'raw', '-O', 'qcow2', str(raw), str(image))
            raw.unlink()
            description = dict(sha256=_sha256(image), kernel=release, mirror=mirror,
                               build_seconds=round(time.monotonic() - started, 1))
            (work / 'image.json').write_text(json.dumps(description, indent=2) + '\n')
            os.rename(work, final)
        finally:
            # Never delete through a mount that is still there (/dev bound in).
            left = _mounts_under(work)
            if left:
                raise RuntimeError('mounts left under %s, not removing it: %s' % (work, left))
            shutil.rmtree(work, ignore_errors=True)
        for old in CACHE_DIR.iterdir():  # images of older recipes
            if old.is_dir() and old.name not in (final.name, 'debs') and not old.name.startswith('.'):
                shutil.rmtree(old)
        return dict(description, path=str(final / IMAGE_NAME), cached=False)


if __name__ == '__main__':
    if sys.argv[1:] != ['build']:
        sys.exit('usage: debian_image.py build')
    image = build()
    print('debian image: %s (kernel %s, built in %s s%s)' % (
        image['path'], image['kernel'], image['build_seconds'], ', cached' if image['cached'] else ''))
