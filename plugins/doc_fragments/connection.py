# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r'''
options:
  uri:
    description:
      - libvirt connection URI of the hypervisor to manage.
      - C(qemu:///system) is the local system daemon; C(qemu+ssh://user@host/system)
        reaches a remote one over SSH (the module then runs on the controller or any
        host with libvirt-python, and the hypervisor only needs libvirtd).
      - Set it once for a play with C(module_defaults) and the action group
        C(group/lifecycle.libvirt.all).
      - When not set, the E(LIBVIRT_DEFAULT_URI) environment variable of the module's
        process is used (as virsh does), and without it C(qemu:///system).
      - A password in the URI (C(user:password@host), or a query parameter such as
        C(password=), C(passwd=), C(secret=), C(token=)) is replaced by C(********) in
        every message and result of the module, and in the module arguments Ansible
        logs and echoes (C(invocation)). It is not hidden where the playbook, inventory
        or extra vars hold it in clear, nor from what prints those variables, so prefer
        authentication that keeps the secret out of the URI - an SSH key
        (C(?keyfile=)), an SSH agent, or libvirt's C(auth.conf).
    type: str
    default: qemu:///system
requirements:
  - libvirt-python >= 9.0
  - lxml
'''
