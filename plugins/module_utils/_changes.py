# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one path every mutation takes, and the one shape of a converge tail.

A converger observes, plans a list of steps, predicts the result and the
diff, then hands the steps to `Changes.carry_out`, which carries each one
out through `Changes.apply` - only outside check mode.  `changed` and the
list of actions come from the same records in both modes, so check mode
predicts the real run by construction.

An action counts once it has happened: in a real run when its operation
returned, in check mode when it was predicted.  A step libvirt refuses is
therefore not reported as a change (nor are the steps after it), and the
failure carries the result known so far (`Changes.reporting`).

`duration` and dropping `diff` outside diff mode are not a converger's
business: `LibvirtModule.run` does both for every module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed


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

    @contextlib.contextmanager
    def reporting(self, result):
        """Run the block; a failure raised in it carries `result` (what was
        known before the failure) and whether anything changed, and a block
        that ends normally sets result['changed']."""
        try:
            yield
        except OperationFailed as exc:
            exc.result.update(result, changed=self.changed or exc.result.get('changed', False))
            raise
        result['changed'] = self.changed

    def carry_out(self, steps, perform, result):
        """Apply every step as `perform(step)`, in order, reporting into
        `result` (see `reporting`)."""
        with self.reporting(result):
            for step in steps:
                self.apply(step, perform, step)


def field_lines(fields):
    """(name, value) pairs as the text a diff shows: one `name: value` per
    line, None as `none`, booleans as true/false."""
    def shown(value):
        if value is None:
            return 'none'
        if isinstance(value, bool):
            return str(value).lower()
        return value
    return ''.join('%s: %s\n' % (name, shown(value)) for name, value in fields)


def diff_entry(header, before, after, after_header=None):
    """One entry of a module's `diff` list.  `before` and `after` are text,
    or (name, value) pairs rendered by `field_lines`."""
    def text(side):
        return side if isinstance(side, str) else field_lines(side)
    return dict(before_header=header, after_header=after_header or header, before=text(before), after=text(after))
