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

`converge_task` runs the single form, or the batch: every item is prepared
first (its spec built and checked, in the main thread), an object named by
two items refuses the whole batch before anything is done, then the items
are converged by up to `parallel` worker threads sharing the module's one
client - a libvirt connection serves several threads, and libvirt-python
releases the GIL while a call waits, so the waits of a batch (shutdowns,
saves, restores) overlap and it costs about its slowest member.  A failing
item does not stop the others; the task reports every item in `<option>`
and fails at the end naming each item that failed and why.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wait import Stopwatch

DEFAULT_PARALLEL = 8


def batch_argument_spec(option, single_spec, **item_checks):
    """The options a batch adds to a module whose single form takes
    `single_spec`: `option`, a list of items that take the single form's
    options without their defaults (the top level gives those), and
    `parallel`.  `item_checks` (required_one_of, ...) apply to each item."""
    items = dict(type='list', elements='dict', options=item_argument_spec(single_spec), **item_checks)
    return {option: items, 'parallel': dict(type='int', default=DEFAULT_PARALLEL)}


def item_argument_spec(single_spec):
    """The single form's argument spec without its top-level defaults (the
    defaults of nested options, such as one disk's, stay)."""
    return dict((name, dict((key, value) for key, value in spec.items() if key != 'default'))
                for name, spec in single_spec.items())


def item_params(params, option, single_spec):
    """Each item of `params[option]` as the single form's parameters: its
    own values, the top-level value of every option it leaves out."""
    return [dict((name, item[name] if item.get(name) is not None else params[name]) for name in single_spec)
            for item in params[option]]


def converge_task(params, option, single_spec, prepare, converge, diff_mode, key=lambda spec: spec.name):
    """The task's result: `converge(prepare(params))` for the single form,
    or the batch of `params[option]` (see `converge_batch`)."""
    if params[option] is None:
        return converge(prepare(params))
    return converge_batch(item_params(params, option, single_spec), option, prepare, converge,
                          params['parallel'], diff_mode, key)


class _Item:
    """One item of a batch: its label in messages, its spec once prepared,
    its result once converged."""

    def __init__(self, option, index, params):
        self.label = params.get('name') or '%s[%d]' % (option, index)
        self.name = params.get('name')
        self.spec = None
        self.result = None

    def fail(self, exc):
        self.result = dict(exc.result, name=self.name, failed=True, msg=str(exc),
                           changed=bool(exc.result.get('changed')))


def converge_batch(items, option, prepare, converge, parallel, diff_mode, key):
    """Converge every item (a dict of the single form's parameters).

    `prepare(params)` builds an item's spec and `converge(spec)` its result
    (with `diff`); both raise OperationFailed for that item alone.  `key(spec)`
    names the object, which one batch may name only once.  Returns the
    task's result: `changed` (any item changed), `option` (every item's
    result, in order, with `failed` and - on failure - `msg`; `diff` only
    under `diff_mode`) and `diff` (every item's, in order).  When an item
    failed, raises OperationFailed naming each failed one, with that result.
    """
    if parallel < 1:
        raise OperationFailed('parallel must be at least 1, got %d' % parallel)
    batch = [_Item(option, index, params) for index, params in enumerate(items)]
    for item, params in zip(batch, items):
        try:
            item.spec = prepare(params)
            item.name = item.label = key(item.spec)
        except OperationFailed as exc:
            item.fail(exc)
    _refuse_repeated(batch, option)
    ready = [item for item in batch if item.result is None]
    if ready:
        with ThreadPoolExecutor(max_workers=min(parallel, len(ready))) as pool:
            for item, result in zip(ready, pool.map(lambda item: _converged(item, converge), ready)):
                item.result = result
    return _batch_result(batch, option, diff_mode)


def _refuse_repeated(batch, option):
    """Two items converging one object would race each other; which of
    them should win is not for the module to guess."""
    positions = {}
    for index, item in enumerate(batch):
        if item.spec is not None:
            positions.setdefault(item.label, []).append(index)
    repeated = ['%s (items %s)' % (label, ', '.join(str(index) for index in indexes))
                for label, indexes in positions.items() if len(indexes) > 1]
    if repeated:
        raise OperationFailed('%s names the same object more than once: %s; give each one once (nothing was done)'
                              % (option, '; '.join(repeated)))


def _converged(item, converge):
    """The result of one item, with `failed` and its own `duration`."""
    watch = Stopwatch()
    try:
        result = dict(converge(item.spec), failed=False)
    except OperationFailed as exc:
        item.fail(exc)
        result = item.result
    result['duration'] = watch.rounded()
    return result


def _batch_result(batch, option, diff_mode):
    results = [item.result for item in batch]
    diff = []
    for result in results:
        item_diff = result.pop('diff', None)
        if diff_mode and item_diff is not None:
            result['diff'] = item_diff
            diff.extend(item_diff)
    outcome = {'changed': any(result['changed'] for result in results), option: results, 'diff': diff}
    failed = [item for item in batch if item.result['failed']]
    if failed:
        raise OperationFailed('%d of %d %s failed: %s' % (
            len(failed), len(batch), option, '; '.join('%s: %s' % (item.label, item.result['msg']) for item in failed)),
            **outcome)
    return outcome
