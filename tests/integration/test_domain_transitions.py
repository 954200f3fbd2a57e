"""Every transition between the five states, from each state, on a guest
that really boots: check mode first (nothing changes, same changed/diff as
the real run), then the real run, then again (no change)."""

import itertools

import pytest

from conftest import run_module

STATES = ('absent', 'defined', 'running', 'paused', 'saved')
TRANSITIONS = [(a, b) for a, b in itertools.product(STATES, STATES) if a != b]


def put_in_state(g, state):
    """Bring a test guest into `state` with libvirt directly (not the module)."""
    if state == 'absent':
        return
    domain = g.conn.defineXML(g.xml)
    if state == 'defined':
        return
    domain.create()
    g.wait_ready()  # its OS is up: ACPI shutdown and the shell work
    if state == 'paused':
        domain.suspend()
    elif state == 'saved':
        domain.managedSave(0)
    assert g.state() == state


def assert_alive(g):
    """The guest's OS answers on its shell: it runs, it was not just defined."""
    with g.shell() as shell:
        assert shell.run('cat /data/boots').strip().isdigit()


@pytest.mark.parametrize('start,target', TRANSITIONS, ids=['%s-to-%s' % t for t in TRANSITIONS])
def test_transition(test_guest, start, target):
    g = test_guest
    put_in_state(g, start)
    params = dict(name=g.name, xml=g.xml, state=target, shutdown_timeout=60, force=target == 'absent')

    check = run_module('domain', check=True, **params)
    assert check['changed'] is True, check
    assert check['state'] == target
    assert check['previous_state'] == start
    assert g.state() == start, 'check mode changed the host'

    real = run_module('domain', **params)
    assert real['changed'] is True, real
    assert real['actions'] == check['actions']
    assert real['diff'] == check['diff']
    assert real['state'] == target and g.state() == target
    assert real['previous_state'] == start
    assert real['persistent'] is (target != 'absent')
    assert real['duration'] >= 0
    assert 'state: %s' % start in real['diff'][0]['before']
    assert 'state: %s' % target in real['diff'][0]['after']
    if target == 'running':
        if start in ('absent', 'defined'):
            assert g.wait_ready() >= 1  # a fresh boot
        assert_alive(g)

    for check_mode in (True, False):
        again = run_module('domain', check=check_mode, **params)
        assert again['changed'] is False, again
        assert again['actions'] == []
        assert again['state'] == target
    assert g.state() == target
