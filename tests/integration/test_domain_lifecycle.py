"""Transient domains, save files, reboot, graceful and forced shutdown."""

import os

from conftest import run_module


def test_transient_domain_is_created_and_ceases_when_stopped(test_guest):
    g = test_guest
    params = dict(xml=g.xml, persistent=False, state='running')
    check = run_module('domain', check=True, **params)
    real = run_module('domain', **params)
    assert check['changed'] and real['changed'] and real['diff'] == check['diff']
    assert real['actions'] == ['create'] and real['persistent'] is False
    assert not g.domain().isPersistent()
    g.wait_ready()
    assert run_module('domain', **params)['changed'] is False
    stop = dict(name=g.name, state='absent', force=True, shutdown_timeout=60)
    stopped = run_module('domain', **stop)
    assert stopped['changed'] is True and stopped['actions'] == ['shutdown']
    assert g.domain() is None
    assert run_module('domain', **stop)['changed'] is False


def test_save_to_file_and_restore_a_transient_domain(test_guest):
    g = test_guest
    save_file = os.path.join(g.workdir, 'guest.save')
    run_module('domain', xml=g.xml, persistent=False, state='running')
    g.wait_ready()
    params = dict(name=g.name, persistent=False, state='saved', save_file=save_file)
    check = run_module('domain', check=True, **params)
    assert check['changed'] and not os.path.exists(save_file)
    saved = run_module('domain', **params)
    assert saved['actions'] == ['save_to_file'] and saved['diff'] == check['diff']
    assert saved['state'] == 'saved' and os.path.getsize(save_file) > 0
    assert g.domain() is None  # a transient domain ceases to exist
    assert run_module('domain', **params)['changed'] is False
    restore = {**params, 'state': 'running'}
    restored = run_module('domain', **restore)
    assert restored['actions'] == ['restore'] and restored['state'] == 'running'
    with g.shell() as shell:  # the same boot, continued
        assert shell.run('cat /data/boots').strip() == '1'
    assert run_module('domain', **restore)['changed'] is False


def test_save_to_file_and_restore_a_persistent_domain(test_guest):
    g = test_guest
    save_file = os.path.join(g.workdir, 'guest.save')
    run_module('domain', xml=g.xml, state='running')
    g.wait_ready()
    params = dict(name=g.name, state='saved', save_file=save_file)
    saved = run_module('domain', **params)
    assert saved['changed'] and saved['state'] == 'saved' and g.state() == 'defined'
    assert run_module('domain', **params)['changed'] is False
    paused = run_module('domain', **{**params, 'state': 'paused'})
    assert paused['actions'] == ['restore_paused'] and g.state() == 'paused'
    running = run_module('domain', **{**params, 'state': 'running'})
    assert running['actions'] == ['resume']
    with g.shell() as shell:
        assert shell.run('cat /data/boots').strip() == '1'


def test_restarted_reboots_and_always_reports_a_change(test_guest):
    g = test_guest
    run_module('domain', xml=g.xml, state='running')
    assert g.wait_ready() == 1
    for boots in (2, 3):
        result = run_module('domain', name=g.name, state='restarted')
        assert result['changed'] is True and result['actions'] == ['reboot'] and result['state'] == 'running'
        assert g.wait_ready(count=boots) == boots  # the log keeps growing across reboots
    check = run_module('domain', check=True, name=g.name, state='restarted')
    assert check['changed'] is True and check['actions'] == ['reboot']


def test_acpi_shutdown_within_the_timeout(test_guest):
    g = test_guest
    run_module('domain', xml=g.xml, state='running')
    g.wait_ready()
    result = run_module('domain', name=g.name, state='defined', shutdown_timeout=60)
    assert result['changed'] is True and result['actions'] == ['shutdown']
    assert g.state() == 'defined' and result['duration'] < 60


def test_force_destroys_a_guest_that_ignores_acpi(make_guest):
    g = make_guest(noacpi=True)
    run_module('domain', xml=g.xml, state='running')
    g.wait_ready()
    refused = run_module('domain', name=g.name, state='defined', shutdown_timeout=3)
    assert refused['failed'] is True
    assert 'did not power off within shutdown_timeout=3 s and is still running' in refused['msg']
    assert g.state() == 'running'
    forced = run_module('domain', name=g.name, state='defined', shutdown_timeout=3, force=True)
    assert forced['changed'] is True and forced['actions'] == ['shutdown']
    assert g.state() == 'defined'


def test_autostart(test_guest):
    g = test_guest
    params = dict(xml=g.xml, state='defined', autostart=True)
    check = run_module('domain', check=True, **params)
    real = run_module('domain', **params)
    assert real['actions'] == check['actions'] == ['define', 'set_autostart']
    assert real['autostart'] is True and g.domain().autostart() == 1
    assert real['diff'] == check['diff'] and 'autostart: true' in real['diff'][0]['after']
    assert run_module('domain', **params)['changed'] is False
    off = run_module('domain', **{**params, 'autostart': False})
    assert off['actions'] == ['set_autostart'] and g.domain().autostart() == 0
