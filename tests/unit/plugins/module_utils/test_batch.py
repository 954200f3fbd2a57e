"""The batch: items read as the single form, defaults from the top level,
bounded concurrency, every item reported, failures named at the end."""

import os
import signal
import threading

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _batch
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed
from ansible_collections.lifecycle.libvirt.plugins.module_utils._definition import STRUCTURED_ARGUMENT_SPEC
from ansible_collections.lifecycle.libvirt.plugins.module_utils._domain import DOMAIN_ARGUMENT_SPEC

SINGLE = dict(DOMAIN_ARGUMENT_SPEC, **STRUCTURED_ARGUMENT_SPEC)


class Spec:
    def __init__(self, params):
        if params.get('bad'):
            raise OperationFailed('bad item %s' % params['name'])
        self.name = params['name']
        self.params = params


def converge(spec):
    if spec.params.get('fails'):
        raise OperationFailed('%s refused' % spec.name, changed=True, actions=['define'])
    return dict(name=spec.name, changed=bool(spec.params.get('changes')), actions=[],
                diff=[dict(before_header=spec.name, before='a', after='b')])


def batch(items, parallel=4, diff_mode=False, converge_one=converge, prepare=Spec):
    form = _batch.BatchForm('domains', dict(name=dict(type='str', required=True), bad=dict(type='bool'),
                                            fails=dict(type='bool'), changes=dict(type='bool')))
    params = dict(name=None, bad=None, fails=None, changes=None, domains=items, parallel=parallel)
    return form.converge(params, prepare, converge_one, diff_mode)


def validated(params):
    spec = dict(SINGLE, **_batch.BatchForm('domains', SINGLE).argument_spec(required_one_of=[('name', 'xml')]))
    return ArgumentSpecValidator(spec).validate(params)


def test_items_are_validated_and_converted_as_the_single_form():
    result = validated(dict(domains=[dict(name='a', shutdown_timeout='60', autostart='yes',
                                          disks=[dict(pool='p', volume='v', readonly='true')])]))
    assert not result.error_messages
    item = result.validated_parameters['domains'][0]
    assert item['shutdown_timeout'] == 60 and item['autostart'] is True
    assert item['state'] is None  # left to the top level
    assert item['disks'] == [dict(pool='p', volume='v', path=None, bus=None, device='disk', cache=None,
                                  readonly=True, format=None)]  # a disk's own defaults stay


@pytest.mark.parametrize('item,message', [
    (dict(name='a', state='hibernated'), 'value of state must be one of'),
    (dict(state='running'), 'one of the following is required: name, xml found in domains'),
    (dict(name='a', colour='red'), 'colour'),
])
def test_a_bad_item_is_refused_as_the_single_form_refuses_it(item, message):
    assert message in ' '.join(validated(dict(domains=[item])).error_messages)


def test_graphics_passwords_of_items_are_no_log():
    result = validated(dict(domains=[dict(name='a', graphics_password='sesame')]))
    assert 'sesame' in result._no_log_values


def test_an_item_takes_the_top_level_value_of_what_it_leaves_out():
    params = dict(name=None, state='running', force=True, autostart=None, domains=[
        dict(name='a', state=None, force=False, autostart=None),
        dict(name='b', state='defined', force=None, autostart=True)])
    spec = dict((option, SINGLE[option]) for option in ('name', 'state', 'force', 'autostart'))
    assert _batch.BatchForm('domains', spec).item_params(params) == [
        dict(name='a', state='running', force=False, autostart=None),
        dict(name='b', state='defined', force=True, autostart=True)]


def test_an_item_may_take_a_required_option_from_the_top_level():
    spec = dict(domain=dict(type='str', required=True), name=dict(type='str'))
    assert _batch.item_argument_spec(spec) == dict(domain=dict(type='str'), name=dict(type='str'))
    form = _batch.BatchForm('snapshots', spec, identity=('domain', 'name'))
    assert form.missing(dict(domain=None, name='s')) == ['domain']
    assert form.missing(dict(domain='web01', name=None)) == []


def test_an_item_without_a_required_option_fails_alone():
    with pytest.raises(OperationFailed) as failure:
        batch([dict(name='a'), dict(changes=True)])
    assert str(failure.value) == '1 of 2 domains failed: domains[1]: the item gives no name, nor does the top level'


def test_the_single_form_converges_the_top_level_options():
    params = dict(name='a', domains=None, parallel=8)
    assert _batch.BatchForm('domains', {}).converge(params, Spec, converge, False)['name'] == 'a'


def test_every_item_is_reported_in_order_and_any_change_is_the_tasks():
    result = batch([dict(name='a'), dict(name='b', changes=True), dict(name='c')])
    assert [item['name'] for item in result['domains']] == ['a', 'b', 'c']
    assert [item['changed'] for item in result['domains']] == [False, True, False]
    assert result['changed'] is True and not any(item['failed'] for item in result['domains'])
    assert all(item['duration'] >= 0 for item in result['domains'])
    assert batch([dict(name='a')])['changed'] is False


def test_diffs_are_kept_per_item_and_for_the_task_only_in_diff_mode():
    shown = batch([dict(name='a'), dict(name='b')], diff_mode=True)
    assert [item['diff'][0]['before_header'] for item in shown['domains']] == ['a', 'b']
    assert shown['diff'] == shown['domains'][0]['diff'] + shown['domains'][1]['diff']
    hidden = batch([dict(name='a')])
    assert hidden['diff'] == [] and 'diff' not in hidden['domains'][0]


def test_failed_items_fail_the_task_by_name_after_the_others_converged():
    with pytest.raises(OperationFailed) as failure:
        batch([dict(name='a', bad=True), dict(name='b', changes=True), dict(name='c', fails=True)])
    assert str(failure.value) == '2 of 3 domains failed: a: bad item a; c: c refused'
    first, second, third = failure.value.result['domains']
    assert first == dict(name='a', failed=True, msg='bad item a', changed=False)
    assert second['failed'] is False and second['changed'] is True
    assert third['failed'] is True and third['changed'] is True and third['actions'] == ['define']
    assert failure.value.result['changed'] is True


def test_an_unnamed_item_is_named_by_its_position():
    def unnamed(params):
        raise OperationFailed('Invalid domain XML')
    form = _batch.BatchForm('domains', dict(name=dict(type='str'), xml=dict(type='str')))
    with pytest.raises(OperationFailed) as failure:
        form.converge(dict(name=None, xml=None, domains=[dict(xml='<domain')], parallel=2), unnamed, converge, False)
    assert str(failure.value) == '1 of 1 domains failed: domains[0]: Invalid domain XML'
    assert failure.value.result['domains'][0]['name'] is None


def test_an_object_named_twice_refuses_the_batch_before_anything_is_done():
    converged = []
    with pytest.raises(OperationFailed) as failure:
        batch([dict(name='a'), dict(name='b'), dict(name='a')], converge_one=converged.append)
    assert str(failure.value) == ('domains gives the same name more than once: a (items 0, 2); give each '
                                  'one once (nothing was done)')
    assert converged == []


def test_parallel_items_converge_at_the_same_time():
    meeting = threading.Barrier(3, timeout=10)

    def meet(spec):
        meeting.wait()  # broken (an error) unless all three converge at once
        return converge(spec)
    assert len(batch([dict(name=name) for name in 'abc'], parallel=3, converge_one=meet)['domains']) == 3


def test_parallel_bounds_the_items_converging_at_once():
    lock, running, most = threading.Lock(), [0], [0]
    pairs = threading.Barrier(2, timeout=10)  # two at once, at least

    def counted(spec):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        pairs.wait()
        with lock:
            running[0] -= 1
        return converge(spec)
    batch([dict(name=name) for name in 'abcdef'], parallel=2, converge_one=counted)
    assert most[0] == 2


def test_parallel_must_be_positive():
    with pytest.raises(OperationFailed, match='parallel must be at least 1, got 0'):
        batch([dict(name='a')], parallel=0)


def test_an_interruption_starts_no_more_items_and_lets_the_running_one_finish():
    """SIGTERM reaches the main thread while a worker converges item a: a
    finishes, b and c never start, the task fails naming them."""
    started = []
    handler = signal.getsignal(signal.SIGTERM)

    def interrupted_during_a(spec):
        started.append(spec.name)
        if spec.name == 'a':
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)  # only counted: a still finishes
            threading.Event().wait(1)  # the main thread handles the signals meanwhile
        return converge(spec)
    with pytest.raises(OperationFailed) as failure:
        batch([dict(name=name, changes=True) for name in 'abc'], parallel=1, converge_one=interrupted_during_a)
    assert started == ['a']
    assert str(failure.value) == ('2 of 3 domains failed: b: not started: the task was interrupted by SIGTERM; '
                                  'c: not started: the task was interrupted by SIGTERM')
    items = failure.value.result['domains']
    assert [(item['name'], item['failed'], item['changed']) for item in items] == [
        ('a', False, True), ('b', True, False), ('c', True, False)]
    assert signal.getsignal(signal.SIGTERM) is handler  # the batch's handler is gone


def test_a_label_names_objects_identified_by_several_options():
    form = _batch.BatchForm('volumes', dict(pool=dict(type='str', default='default'),
                                            name=dict(type='str', required=True)),
                            identity=('name', 'pool'), label=lambda values: '%s/%s' % (values['pool'], values['name']))
    params = dict(pool='default', name=None, parallel=2,
                  volumes=[dict(name='a'), dict(name='a', pool='other'), dict(name='a', pool='default')])

    class Volume:
        def __init__(self, params):
            self.pool, self.name = params['pool'], params['name']
    with pytest.raises(OperationFailed, match=r'the same name more than once: default/a \(items 0, 2\)'):
        form.converge(params, Volume, lambda spec: dict(changed=False), False)
    params['volumes'].pop()
    result = form.converge(params, Volume, lambda spec: dict(changed=False, name=spec.name, pool=spec.pool), False)
    assert [(item['pool'], item['name']) for item in result['volumes']] == [('default', 'a'), ('other', 'a')]
