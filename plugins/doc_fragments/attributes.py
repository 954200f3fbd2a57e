# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # What each attribute means; modules add support and details.
    DOCUMENTATION = r'''
attributes:
  check_mode:
    description: Can run in check mode and return the changed status (and diff) the real run would report.
  diff_mode:
    description: Will return details on what has changed (or would change, in check mode) with C(--diff).
  idempotent:
    description: Running the task again with the same arguments reports no change.
'''

    # For modules that plan their actions first and only carry them out
    # outside check mode.
    PLANNED = r'''
attributes:
  check_mode:
    support: full
    details: Check mode plans the same actions as the real run and reports the same C(changed), C(actions) and C(diff);
      nothing is changed.
'''

    # For modules that only read.
    INFO_MODULE = r'''
attributes:
  check_mode:
    support: full
    details: The module only reads; it runs unchanged in check mode.
  diff_mode:
    support: N/A
    details: The module changes nothing.
  idempotent:
    support: full
'''
