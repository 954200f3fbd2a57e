"""lifecycle.libvirt.pool against the real daemon."""

import os

from conftest import run_module
from storage_helpers import converge, refused
from storage_helpers import storage  # noqa: F401  pylint: disable=unused-import


def test_pool_lifecycle(storage, conn):
    name, path = storage.name('pool'), storage.file('pooldir')

    def verify(done):
        assert os.path.isdir(path) is done
        assert (name in conn.listStoragePools()) is done

    result = converge('pool', verify, name=name, path=path, state='active', autostart=True)
    assert result['actions'] == ['define', 'build', 'start', 'set_autostart']
    assert result['state'] == 'active' and result['autostart'] is True and result['path'] == path
    pool = conn.storagePoolLookupByName(name)
    assert pool.isActive() and pool.autostart()

    assert converge('pool', name=name, state='inactive', autostart=False)['actions'] == ['stop', 'set_autostart']
    assert not pool.isActive() and not pool.autostart()
    assert run_module('pool', name=name, state='present')['changed'] is False  # present keeps it stopped
    refused('pool', 'it is inactive, so its volumes cannot be counted', name=name, state='absent')
    converge('pool', name=name, state='active')

    run_module('volume', pool=name, name=storage.name('left.img'), capacity='1M')
    refused('pool', 'still holds 1 volume(s)', name=name, state='absent')
    assert pool.isActive()
    result = converge('pool', name=name, state='absent', force=True)
    assert result['actions'] == ['stop', 'undefine'] and result['state'] == 'absent'
    assert name not in [p.name() for p in conn.listAllStoragePools(0)] and os.path.exists(os.path.join(path, storage.name('left.img')))


def test_present_defines_without_starting(storage, conn):
    name, path = storage.name('defined'), storage.file('defined')
    result = converge('pool', name=name, path=path, state='present')
    assert result['actions'] == ['define', 'build'] and result['state'] == 'inactive'
    assert not conn.storagePoolLookupByName(name).isActive()


def test_pool_bad_inputs(storage, conn):
    before = sorted(p.name() for p in conn.listAllStoragePools(0))
    refused('pool', 'Invalid pool name', name='../x', path=storage.file('x'))
    refused('pool', 'Invalid pool name', name='a/b', path=storage.file('x'))
    refused('pool', 'path is required to create a pool', name=storage.name('nopath'))
    refused('pool', 'it exists with path /var/lib/libvirt/images, not', name='default', path=storage.file('y'))
    refused('pool', 'value of state must be one of', name='default', state='running')
    assert sorted(p.name() for p in conn.listAllStoragePools(0)) == before
    assert not os.path.exists(storage.file('x'))
