# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one path every mutation takes.

A module records each change it means to make with `Changes.apply`; the
change is carried out only outside check mode.  `changed` and the list of
actions come from the same records in both modes, so check mode predicts the
real run by construction.

An action counts once it has happened: in a real run when its operation
returned, in check mode when it was predicted.  A step libvirt refuses is
therefore not reported as a change (nor are the steps after it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class Changes:
    def __init__(self, check_mode):
        self.check_mode = check_mode
        self.actions = []

    def apply(self, action, operation, *args, **kwargs):
        """Run `operation` unless checking, then record `action` (a short
        name).  When `operation` raises, nothing is recorded."""
        if self.check_mode:
            self.actions.append(action)
            return None
        outcome = operation(*args, **kwargs)
        self.actions.append(action)
        return outcome

    @property
    def changed(self):
        return bool(self.actions)
