"""The release notes antsibull-changelog will write: cut the release on a
copy of the tree and read what it generated.  New modules, plugins and roles
come from their version_added, not from fragments."""

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import REPO

BIN = os.path.dirname(sys.executable)


def read_yaml(*path):
    with open(os.path.join(*path)) as handle:
        return yaml.safe_load(handle)


def names(directory, ext):
    return {name[:-len(ext)] for name in os.listdir(os.path.join(REPO, directory)) if name.endswith(ext)}


VERSION = read_yaml(REPO, 'galaxy.yml')['version']
NEW = {
    'modules': names('plugins/modules', '.py'),
    'filter': names('plugins/filter', '.yml'),
    'inventory': names('plugins/inventory', '.py'),
    'role': set(os.listdir(os.path.join(REPO, 'roles'))),
}


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    """(changelog.yaml, CHANGELOG.rst) after `antsibull-changelog release` on a copy."""
    collections = tmp_path_factory.mktemp('changelog')
    tree = collections / 'ansible_collections' / 'lifecycle' / 'libvirt'
    shutil.copytree(REPO, tree, ignore=shutil.ignore_patterns('.venv', '.cache', '.build', '.git', '.ansible',
                                                              'tests'))
    run = subprocess.run([os.path.join(BIN, 'antsibull-changelog'), 'release', '--version', VERSION],
                         cwd=tree, capture_output=True, text=True, check=False,
                         env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections),
                                  PATH=BIN + os.pathsep + os.environ['PATH']))
    assert run.returncode == 0, run.stdout + run.stderr
    return read_yaml(tree, 'changelogs', 'changelog.yaml')['releases'][VERSION], (tree / 'CHANGELOG.rst').read_text()


def test_every_module_plugin_and_role_is_new_in_this_release(release):
    entry, _text = release
    assert {module['name'] for module in entry['modules']} == NEW['modules']
    for kind in ('filter', 'inventory'):
        assert {plugin['name'] for plugin in entry['plugins'][kind]} == NEW[kind]
    assert {role['name'] for role in entry['objects']['role']} == NEW['role']


def test_generated_sections(release):
    _entry, text = release
    for section in ('New Modules', 'New Roles', 'New Plugins'):
        assert '\n%s\n%s\n' % (section, '-' * len(section)) in text
    for name in NEW['modules'] | NEW['role']:
        assert re.search(r'^- lifecycle\.libvirt\.%s - \S' % name, text, re.M), name


def test_no_fragment_announces_what_is_generated():
    """A new module, plugin or role is not a hand-written major change."""
    announced = re.compile(r'lifecycle\.libvirt\.(%s)( role| inventory plugin| filter)? - '
                           % '|'.join(sorted(set().union(*NEW.values()))))
    fragments = os.path.join(REPO, 'changelogs', 'fragments')
    for name in sorted(os.listdir(fragments)):
        for entry in read_yaml(fragments, name).get('major_changes', []):
            assert not announced.match(entry), (name, entry)
