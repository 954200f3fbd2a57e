"""The planner: every declared state from every observed state."""

import pytest

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _states as S

PERSISTENT = {
    S.ABSENT: S.Observed(S.ABSENT, False),
    S.DEFINED: S.Observed(S.DEFINED, True, True),
    S.RUNNING: S.Observed(S.RUNNING, True, True),
    S.PAUSED: S.Observed(S.PAUSED, True, True),
    S.SAVED: S.Observed(S.SAVED, True, True, S.MANAGED_IMAGE),
}

EXPECTED_PERSISTENT = {
    (S.ABSENT, S.DEFINED): [S.DEFINE],
    (S.ABSENT, S.RUNNING): [S.DEFINE, S.START],
    (S.ABSENT, S.PAUSED): [S.DEFINE, S.START_PAUSED],
    (S.ABSENT, S.SAVED): [S.DEFINE, S.START_PAUSED, S.MANAGED_SAVE],
    (S.DEFINED, S.ABSENT): [S.UNDEFINE],
    (S.DEFINED, S.RUNNING): [S.START],
    (S.DEFINED, S.PAUSED): [S.START_PAUSED],
    (S.DEFINED, S.SAVED): [S.START_PAUSED, S.MANAGED_SAVE],
    (S.RUNNING, S.DEFINED): [S.SHUTDOWN],
    (S.RUNNING, S.PAUSED): [S.SUSPEND],
    (S.RUNNING, S.SAVED): [S.MANAGED_SAVE],
    (S.PAUSED, S.DEFINED): [S.RESUME, S.SHUTDOWN],
    (S.PAUSED, S.RUNNING): [S.RESUME],
    (S.PAUSED, S.SAVED): [S.MANAGED_SAVE],
    (S.SAVED, S.ABSENT): [S.UNDEFINE],
    (S.SAVED, S.DEFINED): [S.START, S.SHUTDOWN],
    (S.SAVED, S.RUNNING): [S.START],
    (S.SAVED, S.PAUSED): [S.START_PAUSED],
}


@pytest.mark.parametrize('current,target', sorted(EXPECTED_PERSISTENT))
def test_every_transition_of_a_persistent_domain(current, target):
    assert S.plan_transition(PERSISTENT[current], target) == EXPECTED_PERSISTENT[(current, target)]


@pytest.mark.parametrize('state', sorted(PERSISTENT))
def test_reaching_the_current_state_does_nothing(state):
    assert S.plan_transition(PERSISTENT[state], state) == []


@pytest.mark.parametrize('state', [S.RUNNING, S.PAUSED])
def test_removing_an_active_domain_needs_force(state):
    with pytest.raises(S.PlanError, match='force=true'):
        S.plan_transition(PERSISTENT[state], S.ABSENT)
    steps = S.plan_transition(PERSISTENT[state], S.ABSENT, force=True)
    assert steps[-2:] == [S.SHUTDOWN, S.UNDEFINE]


def test_restarted_reboots_a_running_guest_and_boots_a_stopped_one():
    assert S.plan_transition(PERSISTENT[S.RUNNING], S.RESTARTED) == [S.REBOOT]
    assert S.plan_transition(PERSISTENT[S.PAUSED], S.RESTARTED) == [S.RESUME, S.REBOOT]
    assert S.plan_transition(PERSISTENT[S.DEFINED], S.RESTARTED) == [S.START]
    assert S.plan_transition(PERSISTENT[S.SAVED], S.RESTARTED) == [S.START, S.REBOOT]


def test_transient_domains():
    absent = PERSISTENT[S.ABSENT]
    running = S.Observed(S.RUNNING, True, False)
    assert S.plan_transition(absent, S.RUNNING, persistent=False) == [S.CREATE]
    assert S.plan_transition(absent, S.PAUSED, persistent=False) == [S.CREATE_PAUSED]
    assert S.plan_transition(running, S.ABSENT, force=True) == [S.SHUTDOWN]
    with pytest.raises(S.PlanError, match='transient'):
        S.plan_transition(running, S.DEFINED, persistent=False)
    with pytest.raises(S.PlanError, match='save_file'):
        S.plan_transition(running, S.SAVED, persistent=False)
    assert S.plan_transition(running, S.SAVED, persistent=False, use_save_file=True) == [S.SAVE_TO_FILE]


def test_persistence_is_converged_both_ways():
    transient = S.Observed(S.RUNNING, True, False)
    assert S.plan_transition(transient, S.RUNNING) == [S.DEFINE]
    assert S.plan_transition(transient, S.DEFINED) == [S.DEFINE, S.SHUTDOWN]
    assert S.plan_transition(PERSISTENT[S.RUNNING], S.RUNNING, persistent=False) == [S.MAKE_TRANSIENT]


def test_save_file_images():
    image = S.Observed(S.SAVED, True, True, S.FILE_IMAGE)
    assert S.plan_transition(image, S.RUNNING, use_save_file=True) == [S.RESTORE]
    assert S.plan_transition(image, S.PAUSED, use_save_file=True) == [S.RESTORE_PAUSED]
    assert S.plan_transition(image, S.SAVED, use_save_file=True) == []
    # A managed image is not the file the user asked for.
    assert S.plan_transition(PERSISTENT[S.SAVED], S.SAVED, use_save_file=True) == [S.START_PAUSED, S.SAVE_TO_FILE]
    transient_image = S.Observed(S.SAVED, False, False, S.FILE_IMAGE)
    assert S.plan_transition(transient_image, S.RUNNING, persistent=False, use_save_file=True) == [S.RESTORE]


def test_odd_observed_states():
    crashed = S.Observed(S.CRASHED, True, True)
    assert S.plan_transition(crashed, S.RUNNING) == [S.DESTROY, S.START]
    assert S.plan_transition(crashed, S.ABSENT) == [S.DESTROY, S.UNDEFINE]
    suspended = S.Observed(S.PMSUSPENDED, True, True)
    assert S.plan_transition(suspended, S.RUNNING) == [S.WAKEUP]
    assert S.plan_transition(suspended, S.PAUSED) == [S.WAKEUP, S.SUSPEND]


@pytest.mark.parametrize('code,name', [(0, S.RUNNING), (1, S.RUNNING), (2, S.RUNNING), (3, S.PAUSED),
                                       (4, S.RUNNING), (5, S.DEFINED), (6, S.CRASHED), (7, S.PMSUSPENDED)])
def test_libvirt_state_codes_are_named(code, name):
    assert S.observed_state(True, code, True).state == name


def test_managed_save_image_makes_a_stopped_domain_saved():
    observed = S.observed_state(True, 5, True, managed_save=True)
    assert (observed.state, observed.image) == (S.SAVED, S.MANAGED_IMAGE)
    assert S.observed_state(False).state == S.ABSENT
    assert S.observed_state(False, file_image=True).state == S.SAVED


def test_observations_compare_by_what_was_seen():
    """A run re-plans only when the domain is no longer as observed."""
    assert S.observed_state(True, 5, True, True) == S.Observed(S.SAVED, True, True, S.MANAGED_IMAGE)
    assert S.observed_state(True, 1, True) != S.observed_state(True, 5, True)
    assert S.observed_state(True, 1, True) != S.observed_state(True, 1, False)
    assert S.observed_state(False, file_image=True) != S.observed_state(False)
