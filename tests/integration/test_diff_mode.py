"""`diff` only under --diff, `duration` always: every module of the collection.

`LibvirtModule.run` adds `duration` to every result and drops `diff` unless
diff mode is on, so no module can return a diff the user did not ask for
(pool, volume and wipe once did, against their own documentation).  Each
module runs on a real libvirt object with and without diff mode:

- a module that changes things, with a task that changes something, returns
  `diff` with diff mode and exactly the same fields but `diff` without it
  (check mode, which predicts the real run's diff, keeps the objects as they
  are for the next task; pool, volume and wipe - the ones that had the
  defect - also run for real, each mode on an object of its own);
- an info module returns the same fields either way (it has nothing to show
  as a diff).
"""

import os

import pytest

from conftest import run_module
from network_helpers import make_network  # noqa: F401  pylint: disable=unused-import
from rig_fixture import rig, rig_guest_factory  # noqa: F401  pylint: disable=unused-import
from storage_helpers import storage  # noqa: F401  pylint: disable=unused-import

CHANGING = ('domain', 'migrate', 'network', 'pool', 'snapshot', 'volume', 'wipe')
INFO = ('domain_info', 'network_info', 'snapshot_info', 'volume_info')


def _same(_diff):
    return {}


def _both_modes(module, check=False, params_of=_same, **params):
    """{diff mode: result} of the task run without, then with diff mode;
    `params_of(diff)` adds what differs between the two runs."""
    results = {}
    for diff in (False, True):
        result = run_module(module, check=check, diff=diff, **dict(params, **params_of(diff)))
        assert result.get('failed') is not True, result
        assert isinstance(result['duration'], (int, float)) and result['duration'] >= 0, result
        results[diff] = result
    return results


def _assert_diff_only_with_diff_mode(results):
    without, with_diff = results[False], results[True]
    assert without['changed'] is True and with_diff['changed'] is True, results
    assert 'diff' not in without, without
    assert with_diff['diff'], with_diff
    assert sorted(with_diff) == sorted(list(without) + ['diff'])


@pytest.fixture
def objects(make_guest, make_network, storage, conn):  # noqa: F811
    """A defined (not started) test guest, a raw volume and a defined network."""
    vm = make_guest('diff')
    conn.defineXML(vm.xml)
    network = make_network('diff')
    defined = run_module('network', state='present', **network.params())
    assert defined.get('failed') is not True, defined
    return dict(vm=vm, volume=storage.create_raw('diff.img'), network=network, storage=storage)


def _changing_tasks(objects):
    """module -> (check mode?, params, params_of(diff)) of a task that changes something."""
    vm, network, storage = objects['vm'], objects['network'], objects['storage']
    return {
        'domain': (True, dict(name=vm.name, state='running'), _same),
        'snapshot': (True, dict(domain=vm.name, name='diff'), _same),
        'network': (True, dict(name=network.name, state='active'), _same),
        'pool': (False, dict(state='active'), lambda diff: dict(
            name=storage.name('pool-%s' % diff), path=storage.file('pool-%s' % diff))),
        'volume': (False, dict(capacity='1M'), lambda diff: dict(name=storage.name('new-%s.img' % diff))),
        'wipe': (False, dict(algorithm='nnsa'), lambda diff: dict(name=storage.create_raw('wipe-%s.img' % diff))),
    }


def _info_tasks(objects):
    vm, network = objects['vm'], objects['network']
    return {
        'domain_info': dict(name=vm.name),
        'network_info': dict(name=network.name),
        'snapshot_info': dict(domain=vm.name),
        'volume_info': dict(name=objects['volume']),
    }


@pytest.mark.parametrize('module', sorted(set(CHANGING) - {'migrate'}))
def test_a_changing_module_returns_diff_only_in_diff_mode(module, objects):
    check, params, params_of = _changing_tasks(objects)[module]
    results = _both_modes(module, check=check, params_of=params_of, **params)
    _assert_diff_only_with_diff_mode(results)


def _batch_tasks(objects):
    """module -> (the batch option, its one item) of a batch that changes something."""
    vm, volume = objects['vm'].name, objects['volume']
    return {
        'domain': ('domains', dict(name=vm, state='running')),
        'snapshot': ('snapshots', dict(domain=vm, name='diff')),
        'volume': ('volumes', dict(name=volume, capacity='8M')),
        'wipe': ('volumes', dict(name=volume, algorithm='nnsa')),
    }


@pytest.mark.parametrize('module', ['domain', 'snapshot', 'volume', 'wipe'])
def test_a_batch_returns_diff_only_in_diff_mode(module, objects):
    option, item = _batch_tasks(objects)[module]
    results = _both_modes(module, check=True, **{option: [item]})
    _assert_diff_only_with_diff_mode(results)
    assert ['diff' in each for each in results[False][option]] == [False]
    assert ['diff' in each for each in results[True][option]] == [True]


def test_migrate_returns_diff_only_in_diff_mode(rig, rig_guest_factory):  # noqa: F811
    vm = rig_guest_factory('diff')
    vm.define(rig.a)
    results = _both_modes('migrate', check=True, uri=rig.a.uri, dest_uri=rig.b.uri, name=vm.name, offline=True)
    _assert_diff_only_with_diff_mode(results)
    assert vm.where() == {'a': 'defined', 'b': None}


@pytest.mark.parametrize('module', INFO)
def test_an_info_module_returns_the_same_in_both_modes(module, objects):
    results = _both_modes(module, **_info_tasks(objects)[module])
    without, with_diff = results[False], results[True]
    without.pop('duration')
    with_diff.pop('duration')
    assert with_diff == without


def test_every_module_is_covered():
    modules_dir = os.path.join(os.path.dirname(__file__), '..', '..', 'plugins', 'modules')
    modules = set(name[:-3] for name in os.listdir(modules_dir) if name.endswith('.py') and name != '__init__.py')
    assert modules == set(CHANGING) | set(INFO)
