# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one path every mutation takes.

A module records each change it means to make with `Changes.apply`; the
change is carried out only outside check mode.  `changed` and the list of
actions come from the same records in both modes, so check mode predicts the
real run by construction.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class Changes:
    def __init__(self, check_mode):
        self.check_mode = check_mode
        self.actions = []

    def apply(self, action, operation, *args, **kwargs):
        """Record `action` (a short name) and run `operation` unless checking."""
        self.actions.append(action)
        if self.check_mode:
            return None
        return operation(*args, **kwargs)

    @property
    def changed(self):
        return bool(self.actions)
