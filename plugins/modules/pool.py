#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: pool
short_description: Define, start, stop and remove libvirt storage pools
version_added: 0.1.0
description:
  - Converges one libvirt storage pool to V(present), V(active), V(inactive) or V(absent).
  - New pools are directory (C(dir)) pools; the directory is built (created) when
    the pool is defined. Existing pools of any type can be started, stopped,
    set to autostart or removed.
options:
  name:
    description:
      - Name of the pool. Names containing C(/), C(..) or NUL are refused.
    type: str
    required: true
  path:
    description:
      - Directory of the pool on the hypervisor, an absolute path. Required to create a pool.
      - An existing pool with another path is not changed; the task fails.
      - A path that exists and is not a directory is refused before anything is defined.
        When building or starting a pool this task defined fails, the pool is undefined
        again, so a failed task leaves no pool behind.
    type: path
  state:
    description:
      - V(present) defines the pool (and builds its directory) without changing
        whether it runs.
      - V(active) defines it if needed and starts it.
      - V(inactive) defines it if needed and stops it.
      - V(absent) stops and undefines it. The directory and the files in it stay.
        A pool that still holds volumes is only removed with O(force=true); an
        inactive pool, whose volumes cannot be counted, too.
    type: str
    choices: [present, absent, active, inactive]
    default: active
  autostart:
    description: Whether libvirtd starts the pool when it starts. Unchanged when omitted.
    type: bool
  force:
    description:
      - Remove (O(state=absent)) a pool that still holds volumes, or an inactive one.
        The volumes' files are not deleted.
    type: bool
    default: false
extends_documentation_fragment:
  - lifecycle.libvirt.connection
  - lifecycle.libvirt.attributes
  - lifecycle.libvirt.attributes.planned
attributes:
  diff_mode:
    support: full
    details: Shows state, autostart and path before and after.
  idempotent:
    support: full
seealso:
  - module: lifecycle.libvirt.volume
author:
  - lifecycle.libvirt contributors (@lifecycle-libvirt)
'''

EXAMPLES = r'''
- name: A directory pool for guest disks, started now and at boot
  lifecycle.libvirt.pool:
    name: guests
    path: /srv/guests
    state: active
    autostart: true

- name: Stop it
  lifecycle.libvirt.pool:
    name: guests
    state: inactive

- name: Remove it even though volumes are left (their files stay on disk)
  lifecycle.libvirt.pool:
    name: guests
    state: absent
    force: true
'''

RETURN = r'''
name:
  description: Name of the pool.
  returned: always
  type: str
  sample: guests
state:
  description: State after the task (in check mode, the state the real run would reach).
  returned: always
  type: str
  sample: active
autostart:
  description: Whether the pool starts with libvirtd.
  returned: always
  type: bool
path:
  description: Directory of the pool; null once it is absent.
  returned: always
  type: str
  sample: /srv/guests
volumes:
  description: Number of volumes in the pool before the task; null when the pool was not active or is absent.
  returned: always
  type: int
  sample: 3
actions:
  description:
    - The actions taken (or, in check mode, that would be taken), in order.
    - Each is one of V(define), V(build), V(start), V(stop), V(set_autostart) or V(undefine).
  returned: always
  type: list
  elements: str
  sample: [define, build, start, set_autostart]
duration:
  description: Seconds the task took, measured on a monotonic clock.
  returned: always
  type: float
  sample: 0.12
diff:
  description: Before and after, as shown by C(--diff).
  returned: when diff mode is on
  type: list
  elements: dict
'''

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtModule
from ansible_collections.lifecycle.libvirt.plugins.module_utils._pool import POOL_ARGUMENT_SPEC, converge_pool


def main():
    module = LibvirtModule(argument_spec=POOL_ARGUMENT_SPEC, supports_check_mode=True)
    module.run(lambda client: converge_pool(client, module.params, module.check_mode))


if __name__ == '__main__':
    main()
