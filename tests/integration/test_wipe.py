"""lifecycle.libvirt.wipe against the real daemon and real files: the
pattern written into a volume is gone from the file on disk afterwards."""

import os

import pytest

from conftest import run_module
from storage_helpers import converge, refused
from storage_helpers import storage  # noqa: F401  pylint: disable=unused-import

PATTERN = b'LLTEST-SECRET-PATTERN'
SIZE = 4 << 20


def content(path):
    with open(path, 'rb') as handle:
        return handle.read()


def test_zero_wipe_removes_the_pattern_and_verifies(storage):
    name = storage.create_raw('data.img', SIZE, PATTERN)
    path = storage.path(name)
    assert content(path).count(PATTERN) == 3 * 64

    def verify(done):
        assert (PATTERN in content(path)) is not done

    result = converge('wipe', verify, name=name, verify=True)
    assert result['actions'] == ['wipe'] and result['algorithm'] == 'zero'
    assert result['wiped_bytes'] == SIZE and result['size'] == SIZE
    assert result['verified'] is True and result['checked_bytes'] == SIZE
    data = content(path)
    assert len(data) == SIZE and data == bytes(SIZE)
    again = run_module('wipe', name=name, verify=True)
    assert again['verified'] is True and again['wiped_bytes'] == 0


def test_zero_wipe_of_an_all_zero_volume_reads_it_and_changes_nothing(storage):
    name = storage.create_raw('zeros.img', SIZE)
    with open(storage.path(name), 'r+b') as handle:  # allocated, but zeros
        handle.write(bytes(SIZE))
    assert os.stat(storage.path(name)).st_blocks > 0
    for check in (True, False):
        result = run_module('wipe', check=check, path=storage.path(name))
        assert result['changed'] is False and result['verified'] is True and result['checked_bytes'] == SIZE


@pytest.mark.parametrize('algorithm', ['nnsa', 'dod', 'bsi', 'gutmann', 'schneier', 'pfitzner7', 'pfitzner33',
                                       'random'])
def test_scrub_algorithms_overwrite_the_pattern(storage, algorithm):
    name = storage.create_raw('scrub.img', 1 << 20, PATTERN)
    path = storage.path(name)
    check = run_module('wipe', check=True, path=path, algorithm=algorithm)
    assert check['changed'] is True and PATTERN in content(path)
    result = run_module('wipe', path=path, algorithm=algorithm)
    assert result['changed'] is True and result['diff'] == check['diff'] and result['wiped_bytes'] == 1 << 20
    assert PATTERN not in content(path)
    # Random patterns cannot be told from data: documented to always wipe again.
    assert run_module('wipe', path=path, algorithm=algorithm)['changed'] is True


def test_verify_catches_a_volume_that_is_not_zero(storage):
    name = storage.create_raw('random.img', 1 << 20, PATTERN)
    result = refused('wipe', 'is not zero', name=name, algorithm='random', verify=True)
    assert result['changed'] is True and result['verified'] is False
    assert PATTERN not in content(storage.path(name))


def test_trim_is_refused_by_a_directory_pool(storage):
    name = storage.create_raw('trim.img', 1 << 20, PATTERN)
    refused('wipe', "Failed to wipe volume default/%s: argument unsupported: 'trim'" % name, name=name,
            algorithm='trim')


def test_in_use_refusal(make_guest):
    guest = make_guest()
    data = os.path.basename(guest.disk_path)
    assert run_module('domain', xml=guest.xml, state='running')['state'] == 'running'
    guest.wait_ready()
    before = content(guest.disk_path)
    refused('wipe', 'running domain(s) %s use it' % guest.name, name=data)
    refused('wipe', 'running domain(s) %s use it' % guest.name, name=data, force=True)
    refused('volume', 'running domain(s) %s use it' % guest.name, name=data, state='absent', wipe='zero', force=True)
    run_module('domain', name=guest.name, state='defined', force=True, shutdown_timeout=0)
    assert content(guest.disk_path) != bytes(len(before))
    refused('wipe', 'used by domain %s (disk vda); set force=true' % guest.name, path=guest.disk_path)
    check = run_module('wipe', check=True, path=guest.disk_path, force=True, verify=True)
    assert check['changed'] is True and content(guest.disk_path) != bytes(len(before))
    result = run_module('wipe', path=guest.disk_path, force=True, verify=True)
    assert result['changed'] is True and result['verified'] is True and result['diff'] == check['diff']
    data_after = content(guest.disk_path)
    assert data_after == bytes(len(data_after))


def test_wipe_bad_inputs(storage):
    refused('wipe', 'Failed to find volume %s in storage pool default: no volume with that name' % storage.name('none'),
            name=storage.name('none'))
    refused('wipe', 'libvirt knows no volume there', path='/tmp/lltest-not-a-volume')
    refused('wipe', 'Failed to find storage pool lltest-nopool', pool='lltest-nopool', name='x')
    refused('wipe', 'value of algorithm must be one of', name='x', algorithm='shred')
    refused('wipe', 'mutually exclusive', name='x', path='/tmp/x')
    refused('wipe', 'one of the following is required', algorithm='zero')
    refused('wipe', 'Invalid volume name', name='../../etc/shadow')
