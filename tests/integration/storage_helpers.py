"""Shared pieces of the storage tests: a per-test name prefix whose volumes,
pools, domains and files are removed afterwards (also when the test fails),
and the check / real / again pattern every option is tested with."""

import hashlib
import os
import shutil
import tempfile
import time
import uuid

import libvirt
import pytest

import testbed  # noqa: E402  (put on sys.path by conftest)
from conftest import run_module


def refresh(pool):
    try:
        pool.refresh(0)
    except libvirt.libvirtError:
        pass  # a job runs in the pool (another test's wipe or clone)


class Storage:
    """Names and files of one test, and direct (libvirt, os) looks at them."""

    def __init__(self, conn):
        self.conn = conn
        self.prefix = '%s%s-' % (testbed.TEST_PREFIX, uuid.uuid4().hex[:6])
        self.workdir = tempfile.mkdtemp(prefix=self.prefix)
        self.default = conn.storagePoolLookupByName('default')

    def name(self, label):
        return self.prefix + label

    def file(self, label):
        return os.path.join(self.workdir, label)

    def volume(self, name, pool='default'):
        pool = self.conn.storagePoolLookupByName(pool)
        refresh(pool)
        try:
            return pool.storageVolLookupByName(name)
        except libvirt.libvirtError:
            return None

    def path(self, name, pool='default'):
        return self.volume(name, pool).path()

    def volume_names(self):
        refresh(self.default)
        return sorted(v.name() for v in self.default.listAllVolumes(0) if v.name().startswith(self.prefix))

    def create_raw(self, label, size=4 << 20, pattern=None):
        """A raw volume made directly with libvirt, optionally with `pattern` repeated at a few offsets."""
        volume = self.default.createXML(
            "<volume><name>%s</name><capacity>%d</capacity><allocation>0</allocation>"
            "<target><format type='raw'/></target></volume>" % (self.name(label), size), 0)
        if pattern is not None:
            with open(volume.path(), 'r+b') as handle:
                for offset in (0, size // 3, size - len(pattern) * 64):
                    handle.seek(offset)
                    handle.write(pattern * 64)
        return self.name(label)

    def cleanup(self):
        for attempt in range(10):
            try:
                testbed.sweep(self.conn, self.prefix)
                testbed.sweep(self.conn, '.' + self.prefix)  # an upload's temporary volumes, if a test failed mid-way
                break
            except libvirt.libvirtError:  # a job of another test runs in the pool
                time.sleep(0.5)
        for pool in self.conn.listAllStoragePools(0):
            if pool.name().startswith(self.prefix):
                if pool.isActive():
                    pool.destroy()
                pool.undefine()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def storage(conn):
    helper = Storage(conn)
    yield helper
    helper.cleanup()


def sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def converge(module, observe=None, **params):
    """Check mode first, then for real, then again.

    Check mode must report a change and the same diff and actions as the
    real run, and change nothing (`observe(False)` is called after it,
    `observe(True)` after the real run);
    the second real run must report no change.  Returns the real run's
    result."""
    check = run_module(module, check=True, **params)
    assert not check.get('failed'), check
    assert check['changed'] is True, check
    if observe is not None:
        observe(False)
    real = run_module(module, **params)
    assert not real.get('failed'), real
    assert real['changed'] is True
    assert check['diff'] == real['diff']
    assert check['actions'] == real['actions']
    if observe is not None:
        observe(True)
    again = run_module(module, **params)
    assert not again.get('failed'), again
    assert again['changed'] is False, again
    assert again['actions'] == []
    return real


def refused(module, text, **params):
    """Run a task that must fail with `text` in its msg and change nothing."""
    result = run_module(module, **params)
    assert result.get('failed') is True, result
    assert text in result['msg'], result['msg']
    assert 'Traceback' not in result['msg']
    return result
