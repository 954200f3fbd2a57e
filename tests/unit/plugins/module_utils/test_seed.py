"""The NoCloud seed: its files and the ISO holding them (pure, no libvirt)."""

import json

import pytest

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _seed
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed


def test_a_dict_is_cloud_config_with_sorted_keys_text_is_kept():
    files = _seed.seed_files(dict(user_data={'b': 1, 'a': [2]}), 'vm-seed')
    assert files['user-data'] == b'#cloud-config\n{\n  "a": [\n    2\n  ],\n  "b": 1\n}\n'
    assert _seed.seed_files(dict(user_data='#!/bin/sh\n'), 'vm-seed')['user-data'] == b'#!/bin/sh\n'
    assert 'network-config' not in files


def test_instance_id_follows_the_content_unless_given():
    one = json.loads(_seed.seed_files(dict(user_data={'a': 1}), 'vm-seed')['meta-data'])
    same = json.loads(_seed.seed_files(dict(user_data={'a': 1}), 'vm-seed')['meta-data'])
    other = json.loads(_seed.seed_files(dict(user_data={'a': 2}), 'vm-seed')['meta-data'])
    assert one == same and one['instance-id'].startswith('vm-seed-') and other != one
    given = _seed.seed_files(dict(user_data={}, meta_data={'instance-id': 'i-7'}), 'vm-seed')['meta-data']
    assert json.loads(given) == {'instance-id': 'i-7'}
    assert _seed.seed_files(dict(user_data={}, meta_data='instance-id: x\n'), 's')['meta-data'] == b'instance-id: x\n'


def test_the_iso_is_labelled_cidata_and_reads_back_as_its_files():
    files = _seed.seed_files(dict(user_data={'a': 1}, network_config={'version': 2}), 'vm-seed')
    image = _seed.build_iso(files)
    assert _seed.read_iso(image) == ('cidata', files)
    assert _seed.read_iso(b'not an iso' * 4096) is None


@pytest.mark.parametrize('cloud_init, message', [
    (dict(user_data=None), 'user_data is required'), (dict(user_data=[1]), 'must be a dict or text'),
    (dict(user_data={}, meta_data=3), 'meta_data must be a dict or text')])
def test_what_cannot_be_a_seed_is_refused(cloud_init, message):
    with pytest.raises(OperationFailed, match=message):
        _seed.seed_files(cloud_init, 'vm-seed')
