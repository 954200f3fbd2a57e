"""Run an Ansible module the way Ansible runs it: its own Python process,
its arguments in a JSON file, its result printed as JSON.  Used by the
integration tests and the benchmarks."""

import json
import os
import subprocess
import sys
import tempfile

REPO_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
COLLECTIONS = os.path.join(REPO_DIR, '.build', 'collections')
OUR_MODULES = 'ansible_collections.lifecycle.libvirt.plugins.modules.'


def run_module(module, params, collections=(COLLECTIONS,)):
    """Run `module` (a dotted module path) with `params`; return its result
    and the process's combined output (for spotting tracebacks)."""
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': params}, handle)
    try:
        process = subprocess.run([sys.executable, '-m', module, handle.name], capture_output=True, text=True,
                                 env=dict(os.environ, PYTHONPATH=os.pathsep.join(collections)), timeout=600,
                                 check=False)
    finally:
        os.unlink(handle.name)
    result = json.loads(process.stdout)
    result.pop('invocation', None)
    return result, process.stdout + process.stderr
