"""What an AWX/AAP execution environment gets from the collection: the
dependencies `ansible-builder introspect` finds in the installed collection,
and the build context `ansible-builder create` makes of the example
definition (examples/awx-project/execution-environment.yml).  Building the
image itself needs a container registry these machines cannot reach."""

import ast
import importlib.metadata
import os
import re
import subprocess
import sys

import bindep.depends
import pytest
import yaml

from conftest import REPO

BIN = os.path.dirname(sys.executable)
EXAMPLE_EE = os.path.join(REPO, 'examples', 'awx-project', 'execution-environment.yml')

# Platform profiles bindep sees in each image: the EL9 base of the example and
# a Debian one.
EL9 = ['platform:rpm', 'platform:dnf', 'platform:redhat', 'platform:centos']
DEBIAN = ['platform:dpkg', 'platform:debian']
BUILDER_EL9 = {'gcc', 'python3-devel', 'pkgconf', 'libvirt-devel'}
RUNTIME_EL9 = {'libvirt-libs', 'openssh-clients'}
BUILDER_DEBIAN = {'gcc', 'python3-dev', 'pkg-config', 'libvirt-dev'}
RUNTIME_DEBIAN = {'libvirt0', 'openssh-client'}


def requirement_name(line):
    return re.split(r'[<>=!~;\[ ]', line, maxsplit=1)[0].lower()


def declared(path):
    """Names of the requirements of a pip requirements file."""
    with open(os.path.join(REPO, path)) as handle:
        return {requirement_name(line) for line in handle if line.strip() and not line.startswith('#')}


EE_PYTHON = declared('meta/ee-requirements.txt')


def packages(bindep_lines, profiles):
    rules = bindep.depends.Depends('\n'.join(bindep_lines)).active_rules(profiles)
    return {rule[0] for rule in rules}


def introspect(*args):
    process = subprocess.run([os.path.join(BIN, 'ansible-builder'), 'introspect'] + list(args),
                             capture_output=True, text=True, check=True)
    return yaml.safe_load(process.stdout)


def third_party_imports():
    """Top-level names of the modules plugins/ imports that are neither the
    standard library nor Ansible's own."""
    names = set()
    for root, _dirs, files in os.walk(os.path.join(REPO, 'plugins')):
        for name in files:
            if name.endswith('.py'):
                with open(os.path.join(root, name)) as handle:
                    tree = ast.parse(handle.read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        names.update(alias.name.split('.')[0] for alias in node.names)
                    elif isinstance(node, ast.ImportFrom) and node.level == 0:
                        names.add(node.module.split('.')[0])
    return {name for name in names
            if name not in sys.stdlib_module_names and name not in ('ansible', 'ansible_collections', '__future__')}


def test_introspect_lists_every_runtime_dependency(installed_collections):
    found = introspect('--sanitize', installed_collections)
    python = {requirement_name(line) for line in found['python']}
    assert python == EE_PYTHON and {'libvirt-python', 'lxml'} <= python, found
    assert all(line.endswith('# from collection lifecycle.libvirt') for line in found['python'] + found['system'])
    system = [line.split('#')[0].strip() for line in found['system']]
    assert packages(system, ['compile'] + EL9) == BUILDER_EL9 | RUNTIME_EL9
    assert packages(system, EL9) == RUNTIME_EL9
    assert packages(system, ['compile'] + DEBIAN) == BUILDER_DEBIAN | RUNTIME_DEBIAN
    assert packages(system, DEBIAN) == RUNTIME_DEBIAN


def test_every_library_the_plugins_import_is_an_ee_requirement():
    """What ansible-core itself requires (PyYAML, Jinja2, ...) every EE has."""
    distributions = importlib.metadata.packages_distributions()
    imported = {distributions[name][0].lower() for name in third_party_imports()}
    with_core = {requirement_name(line) for line in importlib.metadata.requires('ansible-core')}
    assert imported - with_core == EE_PYTHON


def test_runtime_requirements_pin_what_the_ee_requires():
    """requirements/runtime.txt (what is tested here) and the EE's ranges name
    the same libraries, and the pinned versions fall in the ranges."""
    from packaging.requirements import Requirement

    def read(path):
        with open(os.path.join(REPO, path)) as handle:
            return {requirement_name(line): Requirement(line.strip())
                    for line in handle if line.strip() and not line.startswith('#')}

    pinned, ranges = read('requirements/runtime.txt'), read('meta/ee-requirements.txt')
    assert pinned.keys() == ranges.keys()
    for name, requirement in ranges.items():
        [pin] = pinned[name].specifier
        assert pin.operator == '==' and requirement.specifier.contains(pin.version), (name, pin, requirement)


def test_debian_package_names_exist():
    """The dpkg names are checked against this Debian machine's package lists
    (the rpm names cannot be: no EL9 repository is reachable from here)."""
    for name in BUILDER_DEBIAN | RUNTIME_DEBIAN:
        process = subprocess.run(['apt-cache', 'show', '--no-all-versions', name], capture_output=True, text=True,
                                 check=False)
        assert process.returncode == 0 and 'Package: %s' % name in process.stdout, name


@pytest.fixture(scope='module')
def build_context(tmp_path_factory):
    context = tmp_path_factory.mktemp('ee-context')
    subprocess.run([os.path.join(BIN, 'ansible-builder'), 'create', '-f', EXAMPLE_EE, '--context', str(context),
                    '--output-filename', 'Containerfile'], check=True, capture_output=True)
    return context


def test_example_ee_context_is_el9_with_crb(build_context):
    with open(EXAMPLE_EE) as handle:
        definition = yaml.safe_load(handle)
    assert definition['version'] == 3
    containerfile = (build_context / 'Containerfile').read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile
    # CRB is enabled in the base stage, which the builder and final stages start from.
    base_stage = containerfile.split('FROM base AS galaxy')[0]
    assert 'dnf config-manager --set-enabled crb' in base_stage
    assert 'ansible-galaxy collection install' in containerfile
    with open(build_context / '_build' / 'requirements.yml') as handle:
        galaxy = yaml.safe_load(handle)
    assert [entry['name'] for entry in galaxy['collections']] == ['lifecycle.libvirt']


def test_example_ee_context_lists_our_dependencies(build_context, installed_collections, tmp_path):
    """The builder stage of the generated context runs its introspect script
    over the collections the galaxy stage installed; run that same script over
    the installed collection and read what the builder would install."""
    containerfile = (build_context / 'Containerfile').read_text()
    step = re.search(r'^RUN \$PYCMD /output/scripts/introspect.py introspect (.*)$', containerfile, re.M)
    assert step, containerfile
    assert step.group(1).split() == ['--user-bindep=bindep.txt', '--write-bindep=/tmp/src/bindep.txt',
                                     '--write-pip=/tmp/src/requirements.txt']
    pip, system = tmp_path / 'requirements.txt', tmp_path / 'bindep.txt'
    subprocess.run([sys.executable, str(build_context / '_build' / 'scripts' / 'introspect.py'), 'introspect',
                    '--user-bindep=%s' % (build_context / '_build' / 'bindep.txt'),
                    '--write-bindep=%s' % system, '--write-pip=%s' % pip, installed_collections],
                   check=True, capture_output=True)
    assert {requirement_name(line) for line in pip.read_text().splitlines()} == EE_PYTHON
    lines = [line.split('#')[0].strip() for line in system.read_text().splitlines()]
    # The builder stage (profile compile) has what libvirt-python compiles
    # with, for the example's Python 3.11 too; the final image only the runtime.
    assert packages(lines, ['compile'] + EL9) == BUILDER_EL9 | RUNTIME_EL9 | {'python3.11-devel'}
    assert packages(lines, EL9) == RUNTIME_EL9
