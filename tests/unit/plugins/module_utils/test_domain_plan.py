"""The whole plan of one domain: from observed facts and the spec to steps,
pending restart and the predicted state (pure)."""

import pytest

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _domain_plan as P
from ansible_collections.lifecycle.libvirt.plugins.module_utils import _states as S
from ansible_collections.lifecycle.libvirt.plugins.module_utils._domain import DomainSpec

XML = "<domain type='qemu'><name>web</name><memory unit='MiB'>256</memory></domain>"

RUNNING = S.Observed(S.RUNNING, True, True)
DEFINED = S.Observed(S.DEFINED, True, True)
ABSENT = S.Observed(S.ABSENT, False)
TRANSIENT = S.Observed(S.RUNNING, True, False)


def spec(**params):
    declared = dict(name=None, xml=XML, state=S.RUNNING, persistent=True, autostart=None, shutdown_timeout=120,
                    force=False, save_file=None, restart_on_change=False)
    declared.update(params)
    return DomainSpec(declared)


def plan(observed, declared=None, **facts):
    return P.plan_domain(P.DomainFacts(observed, **facts), declared or spec())


def test_nothing_to_do_predicts_what_is():
    done = plan(RUNNING, differences=[], autostart=True, live=P.LiveFacts(False))
    assert done.steps == [] and done.pending_restart is False
    assert done.predicted == dict(state=S.RUNNING, persistent=True, autostart=True)
    assert not done.builds_from_xml


def test_a_different_definition_is_defined_first():
    assert plan(DEFINED, differences=['memory: 256 MiB -> 512 MiB']).steps == [S.DEFINE, S.START]
    # A plan that defines already (a transient domain made persistent) defines once.
    assert plan(TRANSIENT, differences=['memory']).steps == [S.DEFINE]
    assert plan(DEFINED, differences=['memory']).builds_from_xml


def test_a_transient_domain_with_a_different_definition_is_refused():
    with pytest.raises(S.PlanError, match='domain web is transient and runs with a different definition '
                                          r'\(memory; vcpu\)'):
        plan(TRANSIENT, spec(persistent=False), differences=['memory', 'vcpu'])


def test_creating_without_xml_is_refused():
    with pytest.raises(S.PlanError, match='domain web does not exist; xml is required to create it'):
        plan(ABSENT, spec(xml=None, name='web'))
    # Stopping or removing what exists needs no XML.
    assert plan(RUNNING, spec(xml=None, name='web', state=S.DEFINED)).steps == [S.SHUTDOWN]


def test_an_impossible_transition_names_the_domain_and_the_state():
    with pytest.raises(S.PlanError, match='Cannot make domain web absent: the domain is running.*force=true'):
        plan(RUNNING, spec(state=S.ABSENT))


def test_a_live_difference_is_pending_until_a_restart():
    differing = plan(RUNNING, differences=['memory'], live=P.LiveFacts(True))
    assert differing.steps == [S.DEFINE] and differing.pending_restart is True
    # A domain that ends stopped has nothing pending.
    assert plan(RUNNING, spec(state=S.DEFINED), live=P.LiveFacts(True)).pending_restart is False


@pytest.mark.parametrize('state,observed,steps', [
    (S.RUNNING, RUNNING, [S.DEFINE, S.SHUTDOWN, S.START]),
    (S.PAUSED, S.Observed(S.PAUSED, True, True), [S.DEFINE, S.SHUTDOWN, S.START_PAUSED]),
])
def test_restart_on_change_power_cycles(state, observed, steps):
    cycled = plan(observed, spec(state=state, restart_on_change=True), differences=['memory'],
                  live=P.LiveFacts(True))
    assert cycled.steps == steps and cycled.pending_restart is False


def test_restarted_power_cycles_instead_of_a_reboot_when_the_definition_changed():
    cycled = plan(RUNNING, spec(state=S.RESTARTED), differences=['memory'], live=P.LiveFacts(True))
    assert cycled.steps == [S.DEFINE, S.SHUTDOWN, S.START] and cycled.pending_restart is False
    # Without a difference a reboot is enough.
    assert plan(RUNNING, spec(state=S.RESTARTED), live=P.LiveFacts(False)).steps == [S.REBOOT]


def test_growth_is_applied_live_and_the_rest_stays_pending():
    live = P.LiveFacts(True, [S.GROW_MEMORY, S.HOTPLUG], differs_after_growth=False)
    grown = plan(RUNNING, differences=['memory'], live=live)
    assert grown.steps == [S.DEFINE, S.GROW_MEMORY, S.HOTPLUG] and grown.pending_restart is False
    partly = plan(RUNNING, differences=['memory'], live=P.LiveFacts(True, [S.GROW_VCPUS], differs_after_growth=True))
    assert partly.steps == [S.DEFINE, S.GROW_VCPUS] and partly.pending_restart is True
    # restart_on_change power cycles instead of growing.
    assert plan(RUNNING, spec(restart_on_change=True), differences=['memory'],
                live=live).steps == [S.DEFINE, S.SHUTDOWN, S.START]


def test_autostart_is_set_when_it_differs_and_predicted():
    turned_on = plan(DEFINED, spec(state=S.DEFINED, autostart=True), autostart=False)
    assert turned_on.steps == [S.SET_AUTOSTART] and turned_on.autostart is True
    assert plan(DEFINED, spec(state=S.DEFINED, autostart=True), autostart=True).steps == []
    # Not declared: kept as it is.
    assert plan(DEFINED, spec(state=S.DEFINED), autostart=True).autostart is True
    # A domain that is removed or made transient has no autostart.
    removed = plan(DEFINED, spec(state=S.ABSENT), autostart=True)
    assert removed.predicted == dict(state=S.ABSENT, persistent=False, autostart=False)
    assert plan(RUNNING, spec(persistent=False), autostart=True).predicted['autostart'] is False


def test_a_save_file_that_is_not_this_domains_is_never_overwritten():
    refusal = 'Refusing to save domain web to /srv/web.save: it holds the saved memory of another domain'
    facts = dict(save_file=P.SaveFileFacts(overwrite_refusal=refusal))
    with pytest.raises(S.PlanError, match=refusal):
        plan(RUNNING, spec(state=S.SAVED, save_file='/srv/web.save'), **facts)
    # Refused only when the plan saves there.
    assert plan(RUNNING, spec(save_file='/srv/web.save'), **facts).steps == []


def test_an_image_older_than_the_disks_is_not_restored():
    facts = dict(save_file=P.SaveFileFacts(newer_disk='/srv/web.qcow2'))
    with pytest.raises(S.PlanError, match='the image is older than its disk /srv/web.qcow2'):
        plan(DEFINED, spec(save_file='/srv/web.save'), **facts)
    assert plan(RUNNING, spec(save_file='/srv/web.save'), **facts).steps == []
