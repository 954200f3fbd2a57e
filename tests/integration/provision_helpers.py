"""Running the provision role from a test: a playbook on localhost with the
role and its VM list, the way a user runs it."""

import json
import os
import subprocess
import sys

from conftest import REPO, URI

BIN = os.path.dirname(sys.executable)
PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: lifecycle.libvirt.provision
      vars:
        provision_uri: %s
        provision_vms: %s
"""


def run_role(tmp_path, vms, expect_failure=False, check=False):
    """Run the role with `vms` (in check mode with `check`); return
    ansible-playbook's output. The run must succeed, or with `expect_failure`
    fail."""
    playbook = tmp_path / 'provision.yml'
    playbook.write_text(PLAYBOOK % (json.dumps(URI), json.dumps(vms)))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, '.build', 'collections'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    command = [os.path.join(BIN, 'ansible-playbook'), str(playbook)] + (['--check'] if check else [])
    process = subprocess.run(command, capture_output=True, text=True, env=env, check=False, timeout=600)
    output = process.stdout + process.stderr
    assert (process.returncode != 0) == expect_failure, output[-6000:]
    assert 'Traceback' not in output, output[-6000:]
    return process.stdout


def tiny_guest_vm(vm, domain_type, **options):
    """The role's VM entry booting the test guest `vm` (a TestGuest) on a 16 MiB root disk."""
    return dict(dict(name=vm.name, memory_mib=256, domain_type=domain_type, root_capacity='16M', kernel=vm.kernel,
                     initrd=vm.initrd, cmdline='console=ttyS0 quiet', serial_log=vm.serial_log), **options)
