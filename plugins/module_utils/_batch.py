# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging many objects in one task: a batch.

A module with a batch form takes a list option (`domains`, ...) next to its
single form.  Each item takes the single form's options; an option an item
leaves out (or sets to null) takes the value given at the top level, whose
defaults are the single form's.  AnsibleModule checks every item against
the single form's argument spec (types, choices, no_log), so an item reads
exactly as the single form does.

`BatchForm.converge` runs the single form, or the batch: every item is prepared
first (its spec built and checked, in the main thread), an object named by
two items refuses the whole batch before anything is done, then the items
are converged by up to `parallel` worker threads sharing the module's one
client - a libvirt connection serves several threads, and libvirt-python
releases the GIL while a call waits, so the waits of a batch (shutdowns,
saves, restores) overlap and it costs about its slowest member.  A failing
item does not stop the others; the task reports every item in `<option>`
and fails at the end naming each item that failed and why.

Signal handlers can only be installed from the main thread, so the batch
installs them once (`interruptible()`) while its workers run: on SIGTERM or
SIGINT the items not yet started never start (each fails, saying so) and the
items running finish - a step cut off in a worker would be left half-done -
before the task fails.  The workers' own `interruptible()` does nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import signal
from concurrent.futures import ThreadPoolExecutor, wait

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed
from ansible_collections.lifecycle.libvirt.plugins.module_utils._interrupt import SIGNALS, Interrupted, interruptible, signal_name
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wait import Stopwatch

DEFAULT_PARALLEL = 8

# Seconds between two looks of the main thread at the workers; a signal
# interrupts the wait at once anyway.
_POLL = 0.2


class BatchForm:
    """The batch form of a module: the list option (`domains`), the single
    form's argument spec, and the options that identify an item's object -
    the first names the object itself (a domain), which one batch may hold
    only once; those options are attributes of the prepared spec too.
    `label(identity)` names the object in messages and says which items
    are the same object (by default the first identity option's value;
    None when the item does not say)."""

    def __init__(self, option, single_spec, identity=('name',), label=None):
        self.option = option
        self.single_spec = single_spec
        self.identity = identity
        self.label = label or (lambda values: values[identity[0]])

    def argument_spec(self, **item_checks):
        """The options the batch form adds: the list option, whose items
        take the single form's options (see `item_argument_spec`), and
        `parallel`.  `item_checks` (required_one_of, ...) apply to each item."""
        items = dict(type='list', elements='dict', options=item_argument_spec(self.single_spec), **item_checks)
        return {self.option: items, 'parallel': dict(type='int', default=DEFAULT_PARALLEL)}

    def converge(self, params, prepare, converge, diff_mode):
        """The task's result: `converge(prepare(params))` for the single
        form, or the batch of `params[option]`.

        `prepare(params)` builds an item's spec and `converge(spec)` its
        result (with `diff`); both raise OperationFailed for that item alone.
        The batch's result: `changed` (any item changed), `option` (every
        item's result, in order, with `failed` and - on failure - `msg`;
        `diff` only under `diff_mode`) and `diff` (every item's, in order).
        When an item failed, raises OperationFailed naming each failed one,
        with that result."""
        if params[self.option] is None:
            return converge(prepare(params))
        if params['parallel'] < 1:
            raise OperationFailed('parallel must be at least 1, got %d' % params['parallel'])
        batch = [_Item(self, index, item) for index, item in enumerate(self.item_params(params))]
        for item in batch:
            item.prepare(prepare)
        self._refuse_repeated(batch)
        ready = [item for item in batch if item.result is None]
        if ready:
            with interruptible():
                _converge_all(ready, converge, params['parallel'])
        return self._result(batch, diff_mode)

    def item_params(self, params):
        """Each item of `params[option]` as the single form's parameters:
        its own values, the top-level value of every option it leaves out."""
        return [dict((name, item[name] if item.get(name) is not None else params[name]) for name in self.single_spec)
                for item in params[self.option]]

    def missing(self, params):
        """The options the single form requires that neither the item nor
        the top level gives."""
        return [name for name, spec in self.single_spec.items() if spec.get('required') and params[name] is None]

    def _refuse_repeated(self, batch):
        """Two items converging one object would race each other; which of
        them should win is not for the module to guess."""
        positions = {}
        for index, item in enumerate(batch):
            if item.spec is not None:
                positions.setdefault(item.label, []).append(index)
        repeated = ['%s (items %s)' % (label, ', '.join(str(index) for index in indexes))
                    for label, indexes in positions.items() if len(indexes) > 1]
        if repeated:
            raise OperationFailed('%s gives the same %s more than once: %s; give each one once (nothing was done)'
                                  % (self.option, self.identity[0], '; '.join(repeated)))

    def _result(self, batch, diff_mode):
        results = [item.result for item in batch]
        diff = []
        for result in results:
            item_diff = result.pop('diff', None)
            if diff_mode and item_diff is not None:
                result['diff'] = item_diff
                diff.extend(item_diff)
        outcome = {'changed': any(result['changed'] for result in results), self.option: results, 'diff': diff}
        failed = [item for item in batch if item.result['failed']]
        if failed:
            raise OperationFailed('%d of %d %s failed: %s' % (
                len(failed), len(batch), self.option,
                '; '.join('%s: %s' % (item.label, item.result['msg']) for item in failed)), **outcome)
        return outcome


def _converge_all(ready, converge, parallel):
    """Converge the items, up to `parallel` at once; on an interruption
    the items not started fail, the others finish."""
    with ThreadPoolExecutor(max_workers=min(parallel, len(ready))) as pool:
        # Held back while the items are handed out, so that every item has
        # its future when the signal is handled (the workers, started
        # meanwhile, keep them blocked: only the main thread takes them).
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            try:
                futures = [pool.submit(item.converged, converge) for item in ready]
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal held back is handled here
            _wait_all(futures)
        except Interrupted as exc:
            not_started = OperationFailed('not started: the task was interrupted by %s' % signal_name(exc.signum))
            for item, future in zip(ready, futures):
                if future.cancel():
                    item.fail(not_started)
            # Later signals are only counted, so this wait is not cut short.
            _wait_all(futures)
    for item, future in zip(ready, futures):
        if not future.cancelled():
            item.result = future.result()


def _wait_all(futures):
    while wait(futures, timeout=_POLL).not_done:
        pass


def item_argument_spec(single_spec):
    """The single form's argument spec without its top-level defaults and
    requirements: an item leaves to the top level what it does not give
    (the defaults of nested options, such as one disk's, stay)."""
    return dict((name, dict((key, value) for key, value in spec.items() if key not in ('default', 'required')))
                for name, spec in single_spec.items())


class _Item:
    """One item of a batch: its label in messages, the options that
    identify it, its spec once prepared, its result once converged."""

    def __init__(self, form, index, params):
        self.form = form
        self.params = params
        self.identity = dict((option, params[option]) for option in form.identity)
        self.label = form.label(self.identity) or '%s[%d]' % (form.option, index)
        self.spec = None
        self.result = None

    def prepare(self, prepare):
        try:
            missing = self.form.missing(self.params)
            if missing:
                raise OperationFailed('the item gives no %s, nor does the top level' % ' or '.join(missing))
            self.spec = prepare(self.params)
        except OperationFailed as exc:
            self.fail(exc)
            return
        self.identity = dict((option, getattr(self.spec, option)) for option in self.form.identity)
        self.label = self.form.label(self.identity)

    def converged(self, converge):
        """The result of the item, with `failed` and its own `duration`."""
        watch = Stopwatch()
        try:
            result = dict(converge(self.spec), failed=False)
        except OperationFailed as exc:
            self.fail(exc)
            result = self.result
        result['duration'] = watch.rounded()
        return result

    def fail(self, exc):
        self.result = dict(self.identity, **exc.result)
        self.result.update(failed=True, msg=str(exc), changed=bool(exc.result.get('changed')))
