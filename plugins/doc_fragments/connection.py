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
    type: str
    default: qemu:///system
requirements:
  - libvirt-python >= 9.0
  - lxml
'''
