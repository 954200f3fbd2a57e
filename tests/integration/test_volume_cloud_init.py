"""cloud-init NoCloud seed volumes: built, uploaded, read back by content
(idempotent although an ISO holds its build time), replaced when the
content changes, validated with cloud-init's schema check when it is there."""

import io
import json
import os
import sys
import uuid

import pycdlib
import pytest

import testbed
from conftest import run_module

USER_DATA = {'hostname': 'web01', 'users': [{'name': 'admin', 'ssh_authorized_keys': ['ssh-ed25519 AAAA test']}],
             'runcmd': [['touch', '/ok']]}


@pytest.fixture
def seed(conn):
    name = '%s%s-seed.iso' % (testbed.TEST_PREFIX, uuid.uuid4().hex[:6])
    yield name
    testbed.sweep(conn, name)


def iso_files(conn, name):
    """Label and files of the volume, read from its file with pycdlib."""
    path = conn.storagePoolLookupByName('default').storageVolLookupByName(name).path()
    iso = pycdlib.PyCdlib()
    iso.open(path)
    try:
        files = {}
        for child in iso.list_children(rr_path='/'):
            if child.is_file():
                data = io.BytesIO()
                iso.get_file_from_iso_fp(data, rr_path='/' + child.rock_ridge.name().decode())
                files[child.rock_ridge.name().decode()] = data.getvalue().decode()
        return iso.pvd.volume_identifier.decode().strip(), files
    finally:
        iso.close()


def volume_inode(conn, name):
    path = conn.storagePoolLookupByName('default').storageVolLookupByName(name).path()
    return os.stat(path).st_ino


def test_seed_is_built_uploaded_and_idempotent(conn, seed):
    cloud_init = dict(user_data=USER_DATA, meta_data={'local-hostname': 'web01'},
                      network_config={'version': 2, 'ethernets': {'eth0': {'dhcp4': True}}})
    check = run_module('volume', check=True, name=seed, cloud_init=cloud_init)
    assert check['changed'] is True and check['actions'] == ['upload'] and check['reboot_required'] is False
    assert seed not in conn.storagePoolLookupByName('default').listVolumes()
    created = run_module('volume', name=seed, cloud_init=cloud_init)
    assert created['changed'] is True and created['actions'] == ['upload']
    assert created['cloud_init_validation'] == 'validated with cloud-init schema'

    label, files = iso_files(conn, seed)
    assert label == 'cidata' and sorted(files) == ['meta-data', 'network-config', 'user-data']
    assert files['user-data'].startswith('#cloud-config\n')
    assert json.loads(files['user-data'].split('\n', 1)[1]) == USER_DATA
    meta = json.loads(files['meta-data'])
    assert meta['local-hostname'] == 'web01' and meta['instance-id'].startswith(seed + '-')
    assert json.loads(files['network-config'])['ethernets'] == {'eth0': {'dhcp4': True}}

    inode = volume_inode(conn, seed)
    for check_mode in (True, False):
        again = run_module('volume', check=check_mode, name=seed, cloud_init=cloud_init)
        assert again['changed'] is False and again['actions'] == [] and again['reboot_required'] is False
    assert volume_inode(conn, seed) == inode  # not uploaded again


def test_new_content_replaces_the_seed_and_asks_for_a_reboot(conn, seed):
    first = dict(user_data='#cloud-config\nhostname: one\n', meta_data={'instance-id': 'i-1'})
    run_module('volume', name=seed, cloud_init=first)
    second = dict(first, user_data='#cloud-config\nhostname: two\n')
    check = run_module('volume', check=True, name=seed, cloud_init=second)
    assert check['changed'] is True and check['actions'] == ['delete', 'upload'] and check['reboot_required'] is True
    assert iso_files(conn, seed)[1]['user-data'] == first['user_data']  # check mode changed nothing
    real = run_module('volume', name=seed, cloud_init=second)
    assert real['actions'] == check['actions'] and real['reboot_required'] is True
    assert any('reboot the domains using it' in str(w) for w in real['warnings'])
    label, files = iso_files(conn, seed)
    assert label == 'cidata' and files['user-data'] == second['user_data']
    assert json.loads(files['meta-data']) == {'instance-id': 'i-1'}
    assert run_module('volume', name=seed, cloud_init=second)['changed'] is False
    leftovers = [v for v in conn.storagePoolLookupByName('default').listVolumes() if '.partial-' in v and seed in v]
    assert leftovers == []


def test_without_cloud_init_installed_the_result_says_it_was_not_validated(conn, seed, monkeypatch):
    # Only the Python running the module on PATH: no cloud-init command.
    monkeypatch.setenv('PATH', os.path.dirname(sys.executable))
    result = run_module('volume', name=seed, cloud_init=dict(user_data={'runcmd': 5}))
    assert result['changed'] is True
    assert result['cloud_init_validation'] == 'not validated: cloud-init is not installed where the module runs'
    script = run_module('volume', name=seed, cloud_init=dict(user_data='#!/bin/sh\necho hi\n'))
    assert script['cloud_init_validation'].startswith('not validated: user_data is not #cloud-config')


@pytest.mark.parametrize('options, message', [
    (dict(cloud_init=dict(user_data={'runcmd': 5})), "runcmd: 5 is not of type 'array'"),
    (dict(cloud_init=dict(meta_data={'instance-id': 'x'})), 'cloud_init.user_data is required'),
    (dict(cloud_init=dict(user_data=5)), 'cloud_init.user_data must be a dict or text'),
    (dict(cloud_init=dict(user_data={}), capacity='1M'), 'cannot be used with capacity'),
    (dict(cloud_init=dict(user_data={}), state='absent'), 'only used with state=present'),
])
def test_bad_seeds_fail_clearly_and_create_nothing(conn, seed, options, message):
    for check_mode in (True, False):
        result = run_module('volume', check=check_mode, name=seed, **options)
        assert result.get('failed') is True and message in result['msg'], result
        assert seed not in conn.storagePoolLookupByName('default').listVolumes()
