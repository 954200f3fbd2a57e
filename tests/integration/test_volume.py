"""lifecycle.libvirt.volume against the real daemon: every option in check
mode first, then for real, then again; refusals change nothing."""

import os
import stat

import libvirt
import pytest

from conftest import run_module
from storage_helpers import converge, refused, sha256
from storage_helpers import storage  # noqa: F401  pylint: disable=unused-import


def test_sparse_raw_volume_with_mode(storage):
    name = storage.name('raw.img')

    def verify(done):
        volume = storage.volume(name)
        assert (volume is not None) is done
        if done:
            info = os.stat(volume.path())
            assert stat.S_IMODE(info.st_mode) == 0o640
            assert info.st_size == 8 << 20 and info.st_blocks == 0  # sparse

    result = converge('volume', verify, name=name, capacity='8M', format='raw', mode='0640')
    assert result['capacity'] == 8 << 20 and result['format'] == 'raw' and result['mode'] == '0640'
    assert result['path'] == storage.path(name) and result['key'] == result['path']
    assert result['allocation'] == 0 and result['backing'] is None and result['duration'] >= 0


def test_qcow2_volume_is_private_and_preallocated_raw(storage):
    name = storage.name('disk.qcow2')
    result = converge('volume', name=name, capacity='1.5GiB', format='qcow2')
    assert result['capacity'] == 3 << 29 and result['format'] == 'qcow2'
    assert stat.S_IMODE(os.stat(result['path']).st_mode) == 0o600  # not world-readable by default
    full = storage.name('full.img')
    result = converge('volume', name=full, capacity='2M', allocation='2M', format='raw')
    assert os.stat(result['path']).st_blocks * 512 >= 2 << 20


def test_resize_grow_and_guarded_shrink(storage):
    name = storage.name('grow.img')
    converge('volume', name=name, capacity=4 << 20, format='raw')
    result = converge('volume', name=name, capacity='8MiB')
    assert result['actions'] == ['resize'] and os.path.getsize(result['path']) == 8 << 20
    refused('volume', 'set allow_shrink=true', name=name, capacity='2M')
    assert os.path.getsize(result['path']) == 8 << 20
    result = converge('volume', name=name, capacity='2M', allow_shrink=True)
    assert os.path.getsize(result['path']) == 2 << 20
    # qcow2 capacities that are not whole sectors converge too
    odd = storage.name('odd.qcow2')
    assert converge('volume', name=odd, capacity=1000000, format='qcow2')['capacity'] == 1000448


def test_upload_download_round_trip(storage):
    source = storage.file('content.bin')
    with open(source, 'wb') as handle:
        handle.write(os.urandom(3 << 20) + bytes(1 << 20) + b'tail')
    name = storage.name('uploaded.img')
    result = converge('volume', name=name, content_from=source)
    assert result['actions'] == ['upload'] and result['capacity'] == os.path.getsize(source)
    assert sha256(result['path']) == sha256(source)
    target = storage.file('backup.bin')
    result = converge('volume', lambda done: os.path.exists(target) is done or pytest.fail('check mode wrote'),
                      name=name, download_to=target)
    assert result['actions'] == ['download']
    assert sha256(target) == sha256(source)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    with open(target, 'r+b') as handle:  # a file that differs is copied again
        handle.write(b'x')
    assert run_module('volume', name=name, download_to=target)['changed'] is True
    assert sha256(target) == sha256(source)


def test_clone_from_another_pool(storage):
    pool = storage.name('pool')
    converge('pool', name=pool, path=storage.file('pooldir'))
    original = storage.create_raw('original.img', pattern=b'GOLDEN')
    copy = storage.name('copy.img')
    result = converge('volume', pool=pool, name=copy, clone_from=original, source_pool='default')
    assert result['actions'] == ['clone'] and result['format'] == 'raw'
    assert sha256(result['path']) == sha256(storage.path(original))
    assert result['path'].startswith(storage.file('pooldir'))


def test_absent_refuses_a_defined_domain_unless_forced_and_wipes(storage, make_guest):
    guest = make_guest()
    run_module('domain', xml=guest.xml, state='defined')
    data = os.path.basename(guest.disk_path)
    refused('volume', 'used by domain %s' % guest.name, name=data, state='absent')
    assert os.path.exists(guest.disk_path)
    converge('volume', name=data, state='absent', force=True)
    assert not os.path.exists(guest.disk_path)
    name = storage.create_raw('secret.img', pattern=b'SECRET')
    result = converge('volume', name=name, state='absent', wipe='zero')
    assert result['actions'] == ['wipe', 'delete'] and result['path'] is None


def test_guest_boots_from_a_cow_overlay_of_a_base_disk(storage, make_guest):
    guest = make_guest()
    base = os.path.basename(guest.disk_path)
    before = sha256(guest.disk_path)
    overlay = guest.name + '-overlay.qcow2'
    result = converge('volume', name=overlay, backing_volume=base)
    assert result['backing'] == guest.disk_path and result['format'] == 'qcow2'
    assert result['capacity'] == storage.volume(base).info()[1]
    xml = guest.xml.replace(guest.disk_path, result['path'])
    assert run_module('domain', xml=xml, state='running')['state'] == 'running'
    assert guest.wait_ready() == 1  # booted, formatted and mounted its disk from the overlay
    # A running guest keeps both the overlay and its base
    refused('volume', 'running domain(s) %s' % guest.name, name=overlay, state='absent', force=True)
    refused('volume', 'running domain(s) %s' % guest.name, name=base, state='absent', force=True)
    refused('volume', 'running domain(s) %s' % guest.name, name=overlay, capacity='64M')
    run_module('domain', name=guest.name, state='defined', force=True, shutdown_timeout=0)
    assert sha256(guest.disk_path) == before  # every write went to the overlay
    refused('volume', 'overlay volume default/%s' % overlay, name=base, state='absent')


# (id, parameters, text the msg must contain); NAME is replaced by a test name.
BAD_INPUTS = [
    ('unknown-pool', dict(pool='lltest-no-such-pool', capacity='1M'), 'Failed to find storage pool lltest-no-such-pool: no storage pool with that name'),
    ('nonsense-size', dict(capacity='ten gigs'), 'Invalid capacity'),
    ('unknown-unit', dict(capacity='10Q'), "unknown unit 'Q'"),
    ('negative-size', dict(capacity='-5G'), 'must not be negative'),
    ('negative-int', dict(capacity=-1), 'must not be negative'),
    ('fractional-bytes', dict(capacity='1.5'), 'not a whole number of bytes'),
    ('traversal', dict(name='../etc-passwd', capacity='1M'), 'Invalid volume name'),
    ('slash', dict(name='sub/dir.img', capacity='1M'), 'Invalid volume name'),
    ('nul', dict(name='bad\0name', capacity='1M'), 'Invalid volume name'),
    ('traversal-pool', dict(pool='..', capacity='1M'), 'Invalid pool name'),
    ('unknown-algorithm', dict(state='absent', wipe='shred'), 'value of wipe must be one of'),
    ('conflicting-sources', dict(backing_volume='a.img', clone_from='b.img'), 'mutually exclusive'),
    ('missing-backing', dict(backing_volume='NAME-missing.qcow2'), 'source volume NAME-missing.qcow2 does not exist'),
    ('missing-clone', dict(clone_from='NAME-missing.img'), 'source volume NAME-missing.img does not exist'),
    ('missing-capacity', dict(format='raw'), 'capacity is required'),
    ('raw-overlay', dict(backing_volume='a.qcow2', format='raw'), 'overlay is qcow2'),
    ('wipe-present', dict(capacity='1M', wipe='zero'), 'wipe is only used with state=absent'),
    ('absent-with-capacity', dict(state='absent', capacity='1M'), 'cannot be used with state=absent'),
    ('allocation-too-big', dict(capacity='1M', allocation='2M'), 'allocation'),
    ('bad-mode', dict(capacity='1M', mode='rw-r--r--'), 'Invalid mode'),
    ('missing-content', dict(content_from='/nonexistent/lltest.img'), 'is not a readable file'),
    ('source-pool-alone', dict(capacity='1M', source_pool='default'), 'source_pool only applies'),
]


@pytest.mark.parametrize('params,text', [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_fails_clearly_and_changes_nothing(storage, params, text):
    params = dict((k, v.replace('NAME', storage.prefix) if isinstance(v, str) else v) for k, v in params.items())
    params.setdefault('name', storage.name('bad.img'))
    before = storage.volume_names()
    refused('volume', text.replace('NAME', storage.prefix), **params)
    assert storage.volume_names() == before


def test_existing_volume_is_not_converted(storage):
    name = storage.create_raw('existing.img')
    refused('volume', 'exists with format raw, not qcow2', name=name, format='qcow2')
    refused('volume', 'its mode is 0600, not 0644', name=name, mode='0644')
    refused('volume', 'exists with backing none', name=name, backing_volume=name)
    assert storage.volume(name).info()[1] == 4 << 20


def test_unknown_volume_absent_is_a_no_op(storage):
    result = run_module('volume', name=storage.name('never.img'), state='absent')
    assert result['changed'] is False and result['actions'] == []
    with pytest.raises(libvirt.libvirtError):
        storage.default.storageVolLookupByName(storage.name('never.img'))
