"""Without libvirt-python or lxml every module fails with Ansible's
missing_required_lib message, not an ImportError traceback."""

import json
import os
import subprocess
import sys

import pytest

COLLECTIONS = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', '.build', 'collections'))

# Runs a module with `library` made unimportable (None in sys.modules).
RUNNER = """
import runpy, sys
sys.modules[sys.argv[1]] = None
module = sys.argv[2]
sys.argv = [module, sys.argv[3]]
runpy.run_module(module, run_name='__main__')
"""


@pytest.mark.parametrize('module', ['domain', 'domain_info'])
@pytest.mark.parametrize('library,package', [('libvirt', 'libvirt-python'), ('lxml', 'lxml')])
def test_missing_library_is_reported(tmp_path, module, library, package):
    args = tmp_path / 'args.json'
    args.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': {'name': 'x'}}))
    process = subprocess.run(
        [sys.executable, '-c', RUNNER, library, 'ansible_collections.lifecycle.libvirt.plugins.modules.' + module,
         str(args)],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=COLLECTIONS), check=False)
    result = json.loads(process.stdout)
    assert result['failed'] is True
    assert 'Failed to import the required Python library (%s)' % package in result['msg']
