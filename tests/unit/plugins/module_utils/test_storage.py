"""Storage logic without a daemon: validation, planning against libvirt's
in-process test driver (check mode changes nothing there either), and the
stream readers with a fake stream."""

import os
import struct
import uuid

import libvirt
import pytest

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _pool, _storage, _usage, _volume, _wipe
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtClient, OperationFailed

POOL = 'default-pool'


@pytest.fixture
def client():
    connection = LibvirtClient('test:///default')
    yield connection
    connection.close()


def volume_params(**params):
    base = dict((key, None) for key in _volume.VOLUME_ARGUMENT_SPEC)
    base.update(pool=POOL, state='present', allow_shrink=False, force=False, name='v-%s.img' % uuid.uuid4().hex[:6])
    base.update(params)
    return base


def pool_params(**params):
    base = dict(name='p-%s' % uuid.uuid4().hex[:6], path=None, state='active', autostart=None, force=False)
    base.update(params)
    return base


@pytest.mark.parametrize('name', ['', '..', 'a/b', '../x', 'x..y', 'nul\0'])
def test_unsafe_names_are_refused(name):
    with pytest.raises(OperationFailed, match='Invalid volume name'):
        _storage.check_name(name, 'volume name')


@pytest.mark.parametrize('value,mode', [('0600', 0o600), ('600', 0o600), ('0755', 0o755), ('1777', 0o1777),
                                        (None, None)])
def test_modes(value, mode):
    assert _storage.mode_param(value) == mode


@pytest.mark.parametrize('value,mode', [(420, 0o644), (416, 0o640), (0, 0), (0o7777, 0o7777)])
def test_integer_modes_are_the_mode_itself_as_for_the_file_module(value, mode):
    assert _storage.mode_param(value) == mode


@pytest.mark.parametrize('value', ['384', 'rw', '0800', '12', 'u+r', 5000, -1, True])
def test_bad_modes(value):
    with pytest.raises(OperationFailed, match='Invalid mode'):
        _storage.mode_param(value)


def test_qcow2_capacity_rounds_to_sectors():
    assert _volume._rounded(1000, 'qcow2') == 1024
    assert _volume._rounded(1024, 'qcow2') == 1024
    assert _volume._rounded(1000, 'raw') == 1000


@pytest.mark.parametrize('params,message', [
    (dict(state='absent', capacity='1M'), 'capacity cannot be used with state=absent'),
    (dict(wipe='zero'), 'wipe is only used with state=absent'),
    (dict(backing_volume='b.qcow2', format='raw'), 'overlay is qcow2'),
    (dict(capacity='1M', allocation='2M'), 'allocation'),
    (dict(capacity='1M', source_pool='other'), 'source_pool only applies'),
    (dict(capacity='lots'), 'Invalid capacity'),
])
def test_spec_refuses_conflicts(params, message):
    with pytest.raises(OperationFailed, match=message):
        _volume.VolumeSpec(volume_params(**params))


def test_check_mode_predicts_the_real_run(client):
    params = volume_params(capacity='1M', format='raw', mode='0640')
    check = _volume.converge_volume(client, params, check_mode=True)
    assert client.volume(POOL, params['name']) is None
    real = _volume.converge_volume(client, params, check_mode=False)
    assert (check['changed'], check['actions'], check['diff']) == (real['changed'], real['actions'], real['diff'])
    assert real['capacity'] == 1 << 20 and real['path'] == check['path']
    again = _volume.converge_volume(client, params, check_mode=False)
    assert again['changed'] is False and again['actions'] == []


def test_grow_and_guarded_shrink_plans(client):
    params = volume_params(capacity='2M', format='raw')
    _volume.converge_volume(client, params, check_mode=False)
    grow = _volume.converge_volume(client, dict(params, capacity='4M'), check_mode=True)
    assert grow['actions'] == ['resize'] and grow['capacity'] == 4 << 20
    with pytest.raises(OperationFailed, match='set allow_shrink=true'):
        _volume.converge_volume(client, dict(params, capacity='1M'), check_mode=True)
    shrink = _volume.converge_volume(client, dict(params, capacity='1M', allow_shrink=True), check_mode=True)
    assert shrink['actions'] == ['resize'] and shrink['capacity'] == 1 << 20


def test_existing_volume_is_never_converted(client):
    params = volume_params(capacity='1M', format='raw')
    _volume.converge_volume(client, params, check_mode=False)
    with pytest.raises(OperationFailed, match='exists with format raw, not qcow2'):
        _volume.converge_volume(client, dict(params, format='qcow2'), check_mode=True)
    with pytest.raises(OperationFailed, match='libvirt cannot change the permissions'):
        _volume.converge_volume(client, dict(params, mode='0644'), check_mode=True)


def test_clone_and_overlay_plans(client):
    source = volume_params(capacity='3M', format='raw')
    _volume.converge_volume(client, source, check_mode=False)
    clone = _volume.converge_volume(client, volume_params(clone_from=source['name']), check_mode=False)
    assert clone['actions'] == ['clone'] and clone['capacity'] == 3 << 20 and clone['format'] == 'raw'
    overlay = _volume.converge_volume(client, volume_params(backing_volume=source['name']), check_mode=True)
    assert overlay['actions'] == ['create_overlay'] and overlay['format'] == 'qcow2'
    assert overlay['backing'] == '/default-pool/%s' % source['name']
    with pytest.raises(OperationFailed, match='source volume missing.img does not exist in pool default-pool'):
        _volume.converge_volume(client, volume_params(backing_volume='missing.img'), check_mode=True)


def test_absent_of_a_missing_volume_and_unknown_pool(client):
    result = _volume.converge_volume(client, volume_params(state='absent'), check_mode=False)
    assert result['changed'] is False and result['path'] is None
    with pytest.raises(OperationFailed, match='Failed to find storage pool nope: no storage pool with that name'):
        _volume.converge_volume(client, volume_params(pool='nope', capacity='1M'), check_mode=True)


def test_pool_plans(client):
    params = pool_params(path='/lltest-pool-dir', autostart=True)
    check = _pool.converge_pool(client, params, check_mode=True)
    assert client.pool(params['name']) is None
    assert check['actions'] == ['define', 'build', 'start', 'set_autostart'] and check['state'] == 'active'
    real = _pool.converge_pool(client, params, check_mode=False)
    assert real['diff'] == check['diff'] and real['actions'] == check['actions']
    assert _pool.converge_pool(client, params, check_mode=False)['changed'] is False
    with pytest.raises(OperationFailed, match='a pool\'s path cannot be changed'):
        _pool.converge_pool(client, dict(params, path='/elsewhere'), check_mode=True)
    absent = _pool.converge_pool(client, dict(params, state='absent'), check_mode=False)
    assert absent['actions'] == ['stop', 'undefine'] and client.pool(params['name']) is None


def test_pool_with_volumes_is_kept_unless_forced(client):
    _volume.converge_volume(client, volume_params(capacity='1M'), check_mode=False)
    with pytest.raises(OperationFailed, match='still holds'):
        _pool.converge_pool(client, pool_params(name=POOL, state='absent'), check_mode=True)
    forced = _pool.converge_pool(client, pool_params(name=POOL, state='absent', force=True), check_mode=True)
    assert forced['actions'] == ['stop', 'undefine']


DOMAIN = """<domain type='test'><name>%s</name><memory>65536</memory><os><type>hvm</type></os><devices>
<disk type='file' device='disk'><source file='/default-pool/%s'/><target dev='vda'/>
<backingStore type='file'><format type='raw'/><source file='/default-pool/base.img'/></backingStore></disk>
<disk type='volume' device='disk'><source pool='default-pool' volume='%s'/><target dev='vdb'/></disk>
</devices></domain>"""


def test_users_are_found_through_files_backing_chains_and_pool_volumes(client):
    direct, by_volume = volume_params(capacity='1M'), volume_params(capacity='1M')
    for params in (direct, by_volume):
        _volume.converge_volume(client, params, check_mode=False)
    name = 'users-%s' % uuid.uuid4().hex[:6]
    domain = client.conn.defineXML(DOMAIN % (name, direct['name'], by_volume['name']))
    try:
        for path, use, target, via in (('/default-pool/%s' % direct['name'], 'disk', 'vda', 'disk vda'),
                                       ('/default-pool/%s' % by_volume['name'], 'disk', 'vdb', 'disk vdb'),
                                       ('/default-pool/base.img', 'backing', 'vda', 'backing chain of disk vda')):
            assert dict(kind='domain', name=name, domain=name, running=False, use=use, target=target, via=via,
                        path=path) in _usage.volume_users(client, path)
        domain.create()
        assert _usage.running_users(_usage.volume_users(client, '/default-pool/%s' % direct['name'])) == [name]
        # the same file by another spelling
        assert _usage.running_users(_usage.volume_users(client, '/default-pool/x/../%s' % direct['name'])) == [name]
    finally:
        if domain.isActive():
            domain.destroy()
        domain.undefine()


BOOT_DOMAIN = """<domain type='test'><name>%s</name><memory>65536</memory>
<os><type>hvm</type><loader readonly='yes' type='pflash'>/boot-files/loader.fd</loader>
<nvram>/boot-files/nvram.fd</nvram><kernel>/boot-files/vmlinuz</kernel><initrd>/boot-files/initrd.img</initrd></os>
<devices><disk type='file' device='cdrom'><source file='/boot-files/install.iso'/><target dev='hdc'/></disk>
</devices></domain>"""


def test_each_user_says_how_it_uses_the_file(client):
    name = 'boot-%s' % uuid.uuid4().hex[:6]
    domain = client.conn.defineXML(BOOT_DOMAIN % name)
    try:
        for path, use, target, via in (('/boot-files/loader.fd', 'loader', None, 'loader'),
                                       ('/boot-files/nvram.fd', 'nvram', None, 'nvram'),
                                       ('/boot-files/vmlinuz', 'kernel', None, 'kernel'),
                                       ('/boot-files/initrd.img', 'initrd', None, 'initrd'),
                                       ('/boot-files/install.iso', 'disk', 'hdc', 'disk hdc')):
            assert _usage.volume_users(client, path) == [
                dict(kind='domain', name=name, domain=name, running=False, use=use, target=target, via=via,
                     path=path)]
        assert _usage.volume_users(client, '/boot-files/other') == []
    finally:
        domain.undefine()


class FakeStream:
    """Sends data pieces and holes as recvFlags/recvHole do."""

    def __init__(self, pieces):
        self.pieces = list(pieces)
        self.aborted = self.finished = False

    def recvFlags(self, _size, _flags):
        if not self.pieces:
            return b''
        piece = self.pieces[0]
        if isinstance(piece, int):
            return -3
        return self.pieces.pop(0)

    def recvHole(self, _flags):
        return self.pieces.pop(0)

    def abort(self):
        self.aborted = True

    def finish(self):
        self.finished = True


class FakeClient:
    def __init__(self, stream):
        self.stream = stream

    def new_stream(self, _what):
        return self.stream

    @staticmethod
    def call(_what, operation, *args):
        return operation(*args)


class FakeVolume:
    @staticmethod
    def name():
        return 'fake.img'

    @staticmethod
    def download(*_args):
        return 0


def test_zero_check_reads_holes_and_zero_data():
    stream = FakeStream([bytes(100), 4096, bytes(10)])
    check = _wipe.ZeroCheck(FakeClient(stream), FakeVolume())
    assert check.all_zero and check.checked == 4206 and stream.finished


def test_zero_check_stops_at_the_first_non_zero_byte():
    stream = FakeStream([bytes(100), 50, b'\0\0\0X' + bytes(10), bytes(10)])
    check = _wipe.ZeroCheck(FakeClient(stream), FakeVolume())
    assert not check.all_zero and check.first_nonzero == 153 and stream.aborted and not stream.finished


def test_wipe_algorithms_are_libvirts():
    for name in _wipe.WIPE_ALGORITHMS:
        assert isinstance(_wipe.wipe_algorithm(name), int)
    assert _wipe.wipe_algorithm('zero') == libvirt.VIR_STORAGE_VOL_WIPE_ALG_ZERO


def qcow2_with_backing(path, backing):
    """The first bytes of a qcow2 image as qemu-img writes them: magic,
    version, then the backing file name's offset and length."""
    name = backing.encode('utf-8')
    header = b'QFI\xfb' + struct.pack('>IQI', 3, 512, len(name))
    path.write_bytes(header + bytes(512 - len(header)) + name)
    return str(path)


def test_qcow2_backing_names_are_read_as_qemu_reads_them(tmp_path):
    (tmp_path / 'sub').mkdir()
    overlay = qcow2_with_backing(tmp_path / 'sub' / 'top.qcow2', '../base.raw')
    assert _usage._qcow2_backing(overlay) == os.path.join(str(tmp_path / 'sub'), '../base.raw')
    assert _usage._qcow2_backing(qcow2_with_backing(tmp_path / 'abs.qcow2', '/srv/base.qcow2')) == '/srv/base.qcow2'
    assert _usage._qcow2_backing(qcow2_with_backing(tmp_path / 'net.qcow2', 'nbd://host/export')) is None
    (tmp_path / 'raw.img').write_bytes(b'not an image')
    assert _usage._qcow2_backing(str(tmp_path / 'raw.img')) is None
    assert _usage._qcow2_backing(str(tmp_path / 'missing')) is None


def test_backing_chains_follow_the_headers_and_stop_at_a_loop(client, tmp_path):
    top = qcow2_with_backing(tmp_path / 'top.qcow2', 'middle.qcow2')
    qcow2_with_backing(tmp_path / 'middle.qcow2', 'top.qcow2')  # a loop back to the top
    ids = _usage.Identities(client)
    assert ids.chain(top) == [top, str(tmp_path / 'middle.qcow2')]
    os.symlink(str(tmp_path), str(tmp_path / 'link'))
    assert ids.of(str(tmp_path / 'link' / 'top.qcow2')) & ids.of(top)  # one file, two spellings
