"""domain with `domains:`: many domains converged in one task, concurrently,
each exactly as the single form converges it."""

from conftest import run_module

# What a check-mode run must predict of each item of the real run.
PREDICTED = ('name', 'changed', 'actions', 'diff', 'state', 'previous_state', 'failed')


def boot(*guests):
    """Define and start test guests with libvirt directly (not the module),
    all at once; return when each one's OS is up (ACPI and the shell work)."""
    for g in guests:
        g.conn.defineXML(g.xml).create()
    for g in guests:
        g.wait_ready()


def by_name(result):
    return dict((item['name'], item) for item in result['domains'])


def test_mixed_states_converge_in_one_batch_as_check_mode_predicts(make_guest):
    absent, defined, running, paused, saved = (make_guest(label) for label in
                                               ('absent', 'defined', 'running', 'paused', 'saved'))
    defined.conn.defineXML(defined.xml)
    boot(running, paused, saved)
    paused.domain().suspend()
    saved.domain().managedSave(0)
    before = dict((g.name, g.state()) for g in (absent, defined, running, paused, saved))
    assert list(before.values()) == ['absent', 'defined', 'running', 'paused', 'saved']
    # Items give their own state; shutdown_timeout comes from the top level,
    # autostart as a survey string.
    params = dict(shutdown_timeout=60, domains=[
        dict(xml=absent.xml, state='defined', autostart='true'),
        dict(name=defined.name, state='running'),
        dict(name=running.name, state='saved'),
        dict(name=paused.name, state='defined'),
        dict(name=saved.name, state='absent'),
    ])
    targets = ['defined', 'running', 'saved', 'defined', 'absent']

    check = run_module('domain', check=True, **params)
    assert check['changed'] is True and 'failed' not in check, check
    assert dict((g.name, g.state()) for g in (absent, defined, running, paused, saved)) == before
    assert [item['state'] for item in check['domains']] == targets
    assert [item['previous_state'] for item in check['domains']] == list(before.values())

    real = run_module('domain', **params)
    assert real['changed'] is True and 'failed' not in real, real
    assert [dict((k, item[k]) for k in PREDICTED) for item in real['domains']] == \
        [dict((k, item[k]) for k in PREDICTED) for item in check['domains']]
    assert real['domains'][0]['actions'] == ['define', 'set_autostart'] and absent.domain().autostart() == 1
    assert [g.state() for g in (absent, defined, running, paused, saved)] == targets
    # --diff shows each domain's own before and after, and the task's diff is theirs in order.
    for item, start, target in zip(real['domains'], before.values(), targets):
        assert item['diff'][0]['before_header'] == 'domain %s' % item['name']
        assert 'state: %s' % start in item['diff'][0]['before'] and 'state: %s' % target in item['diff'][0]['after']
    assert real['diff'] == [entry for item in real['domains'] for entry in item['diff']]

    again = run_module('domain', diff=False, **params)
    assert again['changed'] is False and not any(item['changed'] for item in again['domains'])
    assert [item['state'] for item in again['domains']] == targets
    assert 'diff' not in again and not any('diff' in item for item in again['domains'])


def test_declarations_converged_at_once_are_each_stored_as_declared(make_guest):
    guests = [make_guest('xml%d' % n) for n in range(6)]
    memories = [128 + 16 * n for n in range(len(guests))]
    items = [dict(xml=g.xml.replace("<memory unit='MiB'>256<", "<memory unit='MiB'>%d<" % mib))
             for g, mib in zip(guests, memories)]
    defined = run_module('domain', state='defined', domains=items)
    assert [item['actions'] for item in defined['domains']] == [['define']] * len(guests)
    assert [g.domain().maxMemory() for g in guests] == [mib * 1024 for mib in memories]
    # Each was compared with its own declaration: nothing to change, in either mode.
    for check in (True, False):
        again = run_module('domain', check=check, state='defined', domains=items)
        assert again['changed'] is False, [item['differences'] for item in again['domains']]
    grown = [dict(item, xml=item['xml'].replace("unit='MiB'>128<", "unit='MiB'>512<")) for item in items]
    changed = run_module('domain', state='defined', domains=grown)
    assert [item['changed'] for item in changed['domains']] == [True] + [False] * (len(guests) - 1)
    assert changed['domains'][0]['differences'] and guests[0].domain().maxMemory() == 512 * 1024


def test_bad_items_fail_the_task_by_name_and_the_others_converge(make_guest):
    good, unknown, broken = make_guest('good'), make_guest('unknown'), make_guest('broken')
    items = [
        dict(xml=good.xml),
        dict(name=unknown.name),  # no such domain, and no XML to create it
        dict(name=broken.name, xml=broken.xml.replace('</domain>', '')),
    ]
    for check in (True, False):
        result = run_module('domain', check=check, state='defined', domains=items)
        assert result['failed'] is True
        assert result['msg'].startswith('2 of 3 domains failed: ')
        assert '%s: domain %s does not exist; xml is required to create it' % (unknown.name, unknown.name) \
            in result['msg']
        assert '%s: Invalid domain XML' % broken.name in result['msg']
        assert good.name not in result['msg'] and 'Traceback' not in result['msg']
        ok, missing, bad = result['domains']
        assert (ok['failed'], ok['changed'], ok['actions'], ok['state']) == (False, True, ['define'], 'defined')
        assert missing['failed'] is True and missing['changed'] is False and missing['name'] == unknown.name
        assert bad['failed'] is True and bad['changed'] is False and 'Invalid domain XML' in bad['msg']
        assert result['changed'] is True
        # Nothing of the bad items exists; the good one is defined only by the real run.
        assert (good.state(), unknown.state(), broken.state()) == ('defined' if not check else 'absent',
                                                                   'absent', 'absent')
    again = run_module('domain', state='defined', domains=items[:1])
    assert again['changed'] is False and 'failed' not in again


def test_a_batch_is_refused_whole_when_it_names_a_domain_twice_or_also_a_single_domain(make_guest):
    g = make_guest()
    twice = run_module('domain', state='defined', domains=[dict(xml=g.xml), dict(name=g.name, state='absent')])
    assert twice['failed'] is True and 'domains' not in twice
    assert twice['msg'] == ('domains gives the same name more than once: %s (items 0, 1); give each one '
                            'once (nothing was done)' % g.name)
    both = run_module('domain', name=g.name, domains=[dict(xml=g.xml)])
    assert both['failed'] is True and both['msg'] == 'parameters are mutually exclusive: domains|name'
    unnamed = run_module('domain', domains=[dict(state='defined')])
    assert unnamed['failed'] is True and 'one of the following is required: name, xml found in domains' \
        in unnamed['msg']
    assert g.state() == 'absent'


def test_shutdowns_in_a_batch_wait_concurrently(make_guest):
    guests = [make_guest('acpi1'), make_guest('acpi2'), make_guest('noacpi', noacpi=True)]
    stop = dict(state='defined', shutdown_timeout=5, force=True)
    # Each alone first: one task per guest, one after another.
    boot(*guests)
    alone = [run_module('domain', name=g.name, **stop) for g in guests]
    assert all(result['actions'] == ['shutdown'] for result in alone)
    assert [g.state() for g in guests] == ['defined'] * 3
    # The batch starts them again (concurrent starts), then shuts them down at once.
    started = run_module('domain', state='running', domains=[dict(name=g.name) for g in guests])
    assert [item['actions'] for item in started['domains']] == [['start']] * 3
    for g in guests:
        g.wait_ready()
    batch = run_module('domain', domains=[dict(name=g.name) for g in guests], **stop)
    assert batch['changed'] is True and 'failed' not in batch, batch
    assert [item['actions'] for item in batch['domains']] == [['shutdown']] * 3
    assert [g.state() for g in guests] == ['defined'] * 3
    # The guest that ignores ACPI is destroyed only once shutdown_timeout ran out.
    assert batch['domains'][2]['duration'] >= stop['shutdown_timeout']
    # About the slowest member, not the sum of the members alone.
    assert batch['duration'] < 0.75 * sum(result['duration'] for result in alone), (batch, alone)
