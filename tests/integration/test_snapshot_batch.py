"""snapshot with `snapshots:`: snapshots of many domains in one task, each
exactly as the single form takes or deletes it."""

from conftest import URI, run_module

PREDICTED = ('domain', 'changed', 'actions', 'diff', 'deleted', 'failed')


def predicted(result):
    return [dict((k, item.get(k)) for k in PREDICTED) for item in result['snapshots']]


def test_a_checkpoint_of_many_domains_in_one_task(make_guest):
    guests = [make_guest('snap%d' % n) for n in range(3)]
    for g in guests:
        g.conn.defineXML(g.xml)  # stopped: an internal snapshot of its qcow2 disk
    missing = guests[0].name + '-missing'
    params = dict(name='before-upgrade', description='batch',
                  snapshots=[dict(domain=g.name) for g in guests] + [dict(domain=missing)])

    check = run_module('snapshot', check=True, **params)
    real = run_module('snapshot', **params)
    for result in (check, real):
        assert result['failed'] is True and result['changed'] is True
        assert result['msg'] == '1 of 4 snapshots failed: %s: Failed to find domain %s: no domain with that name ' \
            'at %s' % (missing, missing, URI)
        assert [item['failed'] for item in result['snapshots']] == [False, False, False, True]
        assert result['snapshots'][3]['domain'] == missing and result['snapshots'][3]['changed'] is False
    assert predicted(check) == predicted(real)
    assert [item['actions'] for item in real['snapshots'][:3]] == [['create']] * 3
    assert [g.domain().snapshotListNames(0) for g in guests] == [['before-upgrade']] * 3
    assert real['diff'] == [entry for item in real['snapshots'][:3] for entry in item['diff']]

    items = params['snapshots'][:3]
    again = run_module('snapshot', diff=False, name='before-upgrade', snapshots=items)
    assert again['changed'] is False and 'failed' not in again and 'diff' not in again

    check = run_module('snapshot', check=True, name='before-upgrade', state='absent', snapshots=items)
    deleted = run_module('snapshot', name='before-upgrade', state='absent', snapshots=items)
    assert predicted(check) == predicted(deleted)
    assert [item['actions'] for item in deleted['snapshots']] == [['delete']] * 3
    assert [g.domain().snapshotListNames(0) for g in guests] == [[]] * 3
    assert run_module('snapshot', name='before-upgrade', state='absent', snapshots=items)['changed'] is False


def test_a_snapshot_batch_needs_each_domain_once(make_guest):
    g = make_guest()
    g.conn.defineXML(g.xml)
    twice = run_module('snapshot', name='s', snapshots=[dict(domain=g.name), dict(domain=g.name, name='t')])
    assert twice['failed'] is True and twice['msg'] == (
        'snapshots gives the same domain more than once: %s (items 0, 1); give each one once (nothing was done)'
        % g.name)
    nameless = run_module('snapshot', name='s', snapshots=[dict(domain=g.name), dict(name='t')])
    assert nameless['failed'] is True
    assert nameless['msg'] == '1 of 2 snapshots failed: snapshots[1]: the item gives no domain, nor does the top level'
    assert nameless['snapshots'][1] == dict(domain=None, name='t', failed=True, changed=False,
                                            msg='the item gives no domain, nor does the top level')
    assert g.domain().snapshotListNames(0) == ['s']
    neither = run_module('snapshot', name='s')
    assert neither['failed'] is True and 'one of the following is required: domain, snapshots' in neither['msg']
