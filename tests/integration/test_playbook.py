"""The collection as users get it: built with ansible-galaxy, installed from
the tarball, run by ansible-playbook with module_defaults and --diff."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from lxml import etree

import collection  # tests/testbed, on the path through conftest
from conftest import URI

BIN = os.path.dirname(sys.executable)

PLAYBOOK = os.path.join(os.path.dirname(__file__), 'playbooks', 'define_guest.yml')
WIPE_ASYNC_PLAYBOOK = os.path.join(os.path.dirname(__file__), 'playbooks', 'wipe_async.yml')


@pytest.fixture(scope='module')
def installed_collection(tmp_path_factory):
    install_dir = pathlib.Path(collection.build_and_install(str(tmp_path_factory.mktemp('galaxy'))))
    assert os.path.exists(install_dir / 'ansible_collections' / 'lifecycle' / 'libvirt' / 'plugins' / 'modules'
                          / 'domain.py')
    return install_dir


def play(collections, xml, *options):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR='1',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    extra = json.dumps(dict(guest_xml=xml, guest_uri=URI))
    return subprocess.run([os.path.join(BIN, 'ansible-playbook'), PLAYBOOK, '-e', extra] + list(options),
                          capture_output=True, text=True, env=env, check=False)


def test_installed_collection_with_module_defaults_and_diff(installed_collection, test_guest):
    g = test_guest
    check = play(installed_collection, g.xml, '--check', '--diff')
    assert g.domain() is None, 'check mode defined the domain'
    first = play(installed_collection, g.xml, '--diff')
    for run in (check, first):
        assert run.returncode == 0, run.stdout + run.stderr
        assert 'changed=1' in run.stdout
        # --diff shows the state and the XML before and after.
        assert '-state: absent' in run.stdout and '+state: defined' in run.stdout
        assert "+  <name>%s</name>" % g.name in run.stdout
    assert g.domain() is not None
    second = play(installed_collection, g.xml, '--diff')
    assert second.returncode == 0 and 'changed=0' in second.stdout, second.stdout


def test_wipe_runs_as_an_async_job(installed_collection, conn):
    name = 'lltest-async-wipe.raw'
    pool_dir = etree.fromstring(conn.storagePoolLookupByName('default').XMLDesc(0)).findtext('target/path')
    path = os.path.join(pool_dir, name)
    extra = json.dumps(dict(volume_name=name, volume_path=path))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed_collection), ANSIBLE_NOCOLOR='1',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    run = subprocess.run([os.path.join(BIN, 'ansible-playbook'), WIPE_ASYNC_PLAYBOOK, '-e', extra],
                         capture_output=True, text=True, env=env, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not os.path.exists(path)
