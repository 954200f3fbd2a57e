"""volume and wipe with `volumes:`: many volumes in one task, each exactly
as the single form converges or wipes it, a bad item failing alone."""

import os

from conftest import URI, run_module
from storage_helpers import sha256
from storage_helpers import storage  # noqa: F401  pylint: disable=unused-import

PATTERN = b'LLTEST-BATCH-PATTERN'
PREDICTED = ('name', 'pool', 'changed', 'actions', 'diff', 'failed', 'msg', 'path', 'capacity', 'format', 'backing')


def predicted(result):
    return [dict((k, item.get(k)) for k in PREDICTED) for item in result['volumes']]


def content(path):
    with open(path, 'rb') as handle:
        return handle.read()


def test_a_batch_creates_volumes_and_a_bad_item_fails_alone(storage):
    base = storage.create_raw('base.img', 1 << 20, PATTERN)
    names = [storage.name(label) for label in ('a.img', 'b.qcow2', 'overlay.qcow2', 'nonsense.img', 'lost.img')]
    good = [dict(name=names[0], capacity='2M'),
            dict(name=names[1], capacity='3M', format='qcow2', mode='0640'),
            dict(name=names[2], backing_volume=base)]
    bad = [dict(name=names[3], capacity='lots'),
           dict(name=names[4], pool=storage.prefix + 'no-such-pool', capacity='1M')]
    params = dict(capacity='1M', volumes=good + bad)
    lost_pool = bad[1]['pool']

    check = run_module('volume', check=True, **params)
    assert storage.volume_names() == [base]  # check mode creates nothing
    real = run_module('volume', **params)
    for result in (check, real):
        assert result['failed'] is True and result['changed'] is True
        assert result['msg'] == (
            "2 of 5 volumes failed: default/%s: Invalid capacity: capacity 'lots' is not a size: write a number of "
            "bytes or a number with a unit such as 512M, 10G or 1.5GiB; %s/%s: Failed to find storage pool %s: "
            "no storage pool with that name at %s" % (names[3], lost_pool, names[4], lost_pool, URI)), result['msg']
        assert [item['failed'] for item in result['volumes']] == [False] * 3 + [True] * 2
        assert [item['changed'] for item in result['volumes']] == [True] * 3 + [False] * 2
    assert predicted(check) == predicted(real)
    assert [item['actions'] for item in real['volumes'][:3]] == [['create'], ['create'], ['create_overlay']]
    assert real['diff'] == [entry for item in real['volumes'][:3] for entry in item['diff']]

    # libvirt and the files hold exactly the good items, nothing of the bad ones.
    assert storage.volume_names() == sorted([base] + names[:3])
    a, b, overlay = (storage.volume(name) for name in names[:3])
    assert a.info()[1] == 2 << 20 and b.info()[1] == 3 << 20 and overlay.info()[1] == 1 << 20
    assert oct(os.stat(b.path()).st_mode & 0o777) == '0o640'
    assert '<backingStore>' in overlay.XMLDesc(0) and storage.path(base) in overlay.XMLDesc(0)
    assert content(a.path()) == bytes(2 << 20)
    directory = os.path.dirname(a.path())
    assert not [f for f in os.listdir(directory) if names[3] in f or names[4] in f]

    again = run_module('volume', diff=False, capacity='1M', volumes=good)
    assert again['changed'] is False and 'failed' not in again and 'diff' not in again
    assert [item['actions'] for item in again['volumes']] == [[]] * 3

    gone = [dict(name=name, state='absent') for name in names[:3]]
    check = run_module('volume', check=True, volumes=gone, parallel=1)
    assert storage.volume_names() == sorted([base] + names[:3])
    deleted = run_module('volume', volumes=gone, parallel=1)
    assert predicted(check) == predicted(deleted) and deleted['changed'] is True
    assert storage.volume_names() == [base]
    assert run_module('volume', volumes=gone)['changed'] is False


def test_a_volume_batch_needs_each_volume_once(storage):
    name = storage.name('once.img')
    twice = run_module('volume', capacity='1M', volumes=[dict(name=name), dict(name=name, pool='default')])
    assert twice['failed'] is True and twice['msg'] == (
        'volumes gives the same name more than once: default/%s (items 0, 1); give each one once (nothing was done)'
        % name)
    assert storage.volume_names() == []
    nameless = run_module('volume', capacity='1M', volumes=[dict(name=name), dict(capacity='2M')])
    assert nameless['msg'] == '1 of 2 volumes failed: volumes[1]: the item gives no name, nor does the top level'
    assert storage.volume_names() == [name]


def test_a_wipe_batch_wipes_all_but_the_volume_a_domain_uses(storage, make_guest):
    guest = make_guest()
    guest.conn.defineXML(guest.xml)  # defined: its disk is refused without force or allowed_users
    used_before = sha256(guest.disk_path)
    names = [storage.create_raw('wipe%d.img' % n, 2 << 20, PATTERN) for n in range(3)]
    paths = [storage.path(name) for name in names]
    items = [dict(name=names[0]), dict(path=paths[1]), dict(name=names[2], verify=True),
             dict(path=guest.disk_path)]

    check = run_module('wipe', check=True, volumes=items)
    assert all(PATTERN in content(path) for path in paths)
    real = run_module('wipe', volumes=items)
    for result in (check, real):
        assert result['failed'] is True and result['changed'] is True
        assert result['msg'] == (
            '1 of 4 volumes failed: %s: Failed to wipe volume %s: it is used by domain %s (disk vda); set '
            'force=true to do it anyway' % (guest.disk_path, guest.disk_path, guest.name)), result['msg']
        assert [item['failed'] for item in result['volumes']] == [False, False, False, True]
        assert [item['path'] for item in result['volumes']] == paths + [guest.disk_path]
    assert predicted(check) == predicted(real)
    assert [item['actions'] for item in real['volumes'][:3]] == [['wipe']] * 3
    assert [item['name'] for item in real['volumes'][:3]] == names
    assert real['volumes'][2]['verified'] is True and real['volumes'][2]['checked_bytes'] == 2 << 20
    assert [content(path) for path in paths] == [bytes(2 << 20)] * 3
    assert sha256(guest.disk_path) == used_before

    again = run_module('wipe', volumes=items[:3])
    assert again['changed'] is False and [item['verified'] for item in again['volumes']] == [True] * 3
    allowed = run_module('wipe', volumes=[dict(path=guest.disk_path, allowed_users=[guest.name])])
    assert allowed['changed'] is True and 'failed' not in allowed


def test_a_wipe_batch_naming_one_volume_twice_is_refused_before_anything(storage):
    name = storage.create_raw('twice.img', 1 << 20, PATTERN)
    path = storage.path(name)
    twice = run_module('wipe', volumes=[dict(name=name), dict(path=path)])
    assert twice['failed'] is True and twice['msg'] == (
        'volumes gives the same path more than once: %s (items 0, 1); give each one once (nothing was done)' % path)
    assert PATTERN in content(path)
    missing = run_module('wipe', volumes=[dict(name=name), dict(name=storage.name('missing.img'))])
    assert missing['failed'] is True and missing['volumes'][0]['changed'] is True
    assert missing['msg'].startswith('1 of 2 volumes failed: default/%s: ' % storage.name('missing.img'))
    assert content(path) == bytes(1 << 20)
