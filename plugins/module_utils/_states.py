# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one vocabulary of domain states, and the pure planning of the steps
that move a domain from the state it is in to the state declared.

Nothing here talks to libvirt: the planner is a function of what was
observed and what was asked, so check mode (which only plans) and the real
run (which plans, then carries the plan out) cannot disagree.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# States a user can declare, in the words of libvirt's lifecycle page.
ABSENT = 'absent'          # Undefined
DEFINED = 'defined'        # Defined / Stopped
RUNNING = 'running'
PAUSED = 'paused'
SAVED = 'saved'
RESTARTED = 'restarted'    # not a state: a reboot, always a change
DECLARABLE_STATES = (ABSENT, DEFINED, RUNNING, PAUSED, SAVED, RESTARTED)

# States that can only be observed.
CRASHED = 'crashed'
PMSUSPENDED = 'pmsuspended'

# libvirt's virDomainState codes (kept as numbers so this file needs no
# libvirt import and can be unit tested anywhere).
_LIBVIRT_STATE_NAMES = {
    0: RUNNING,      # VIR_DOMAIN_NOSTATE: active, state not reported
    1: RUNNING,      # VIR_DOMAIN_RUNNING
    2: RUNNING,      # VIR_DOMAIN_BLOCKED: running, waiting on a resource
    3: PAUSED,       # VIR_DOMAIN_PAUSED
    4: RUNNING,      # VIR_DOMAIN_SHUTDOWN: still running while shutting down
    5: DEFINED,      # VIR_DOMAIN_SHUTOFF
    6: CRASHED,      # VIR_DOMAIN_CRASHED
    7: PMSUSPENDED,  # VIR_DOMAIN_PMSUSPENDED (guest suspended to RAM)
}

# Where a saved domain's memory lives.
MANAGED_IMAGE = 'managed'
FILE_IMAGE = 'file'

# Steps, each one libvirt call (or one wait-bounded sequence, for shutdown).
DEFINE = 'define'                  # define (or redefine) the persistent configuration
CREATE = 'create'                  # create a transient domain from XML, running
CREATE_PAUSED = 'create_paused'
START = 'start'                    # boots, or resumes from a managed save image
START_PAUSED = 'start_paused'
RESUME = 'resume'
SUSPEND = 'suspend'
WAKEUP = 'wakeup'                  # out of guest power-management suspend
SHUTDOWN = 'shutdown'              # graceful; destroy on timeout only when forced
DESTROY = 'destroy'
REBOOT = 'reboot'
MANAGED_SAVE = 'managed_save'
SAVE_TO_FILE = 'save_to_file'
RESTORE = 'restore'                # from save_file
RESTORE_PAUSED = 'restore_paused'
UNDEFINE = 'undefine'              # with managed save, snapshot metadata and NVRAM
MAKE_TRANSIENT = 'make_transient'  # undefine while running: it goes on, transient
SET_AUTOSTART = 'set_autostart'
# What a running domain takes without a restart (_live.Growth).
GROW_MEMORY = 'grow_memory_live'   # balloon up to the maximum it runs with
GROW_VCPUS = 'grow_vcpus_live'     # hot-plug vCPUs up to its maximum
HOTPLUG = 'hotplug'                # attach new disks and interfaces
LIVE_STEPS = (GROW_MEMORY, GROW_VCPUS, HOTPLUG)

ACTIVE_STATES = (RUNNING, PAUSED, CRASHED, PMSUSPENDED)


class PlanError(ValueError):
    """The declared state cannot be reached from the observed one without an
    option the user has not given; the message says which."""


class Observed:
    """What is known of a domain before anything is changed."""

    def __init__(self, state, exists, persistent=False, image=None):
        self.state = state
        self.exists = exists
        self.persistent = persistent
        self.image = image  # MANAGED_IMAGE or FILE_IMAGE when state is SAVED

    @property
    def active(self):
        return self.state in ACTIVE_STATES

    def __eq__(self, other):
        return isinstance(other, Observed) and vars(self) == vars(other)

    def __ne__(self, other):
        return not self == other


def observed_state(exists, libvirt_state=None, persistent=False, managed_save=False, file_image=False):
    """Name the state of a domain in the collection's vocabulary.

    `file_image` is true when the user's save_file holds this domain's state
    and the domain is not active: it then counts as saved, like a managed
    save image does.
    """
    if exists:
        state = _LIBVIRT_STATE_NAMES.get(libvirt_state, RUNNING)
        if state == DEFINED and managed_save:
            return Observed(SAVED, True, persistent, MANAGED_IMAGE)
        if state == DEFINED and file_image:
            return Observed(SAVED, True, persistent, FILE_IMAGE)
        return Observed(state, True, persistent)
    if file_image:
        return Observed(SAVED, False, False, FILE_IMAGE)
    return Observed(ABSENT, False)


def _wake(observed):
    """Steps that turn an active domain into a plainly running one."""
    return {PAUSED: [RESUME], PMSUSPENDED: [WAKEUP]}.get(observed.state, [])


def _bring_up(observed, paused, persistent):
    """Steps that make the domain active (running, or paused when asked)
    from any state, restoring saved memory rather than booting afresh."""
    state = observed.state
    if state == RUNNING:
        return [SUSPEND] if paused else []
    if state == PAUSED:
        return [] if paused else [RESUME]
    if state == PMSUSPENDED:
        return [WAKEUP] + ([SUSPEND] if paused else [])
    if state == SAVED and observed.image == FILE_IMAGE:
        return [RESTORE_PAUSED if paused else RESTORE]
    steps = [DESTROY] if state == CRASHED else []
    if state == ABSENT or (state == CRASHED and not observed.persistent):
        if persistent:
            return steps + [DEFINE, START_PAUSED if paused else START]
        return steps + [CREATE_PAUSED if paused else CREATE]
    return steps + [START_PAUSED if paused else START]


def plan_transition(observed, target, persistent=True, force=False, use_save_file=False):
    """The list of steps from `observed` to the declared `target` state.

    `persistent` is the declared persistence; `use_save_file` means the
    user gave save_file (saving then writes that file instead of libvirt's
    managed save image).
    """
    state = observed.state
    if target == ABSENT:
        if state in (RUNNING, PAUSED, PMSUSPENDED):
            if not force:
                raise PlanError(
                    'the domain is %s; removing it would stop it. Stop it first (state=defined) '
                    'or set force=true to shut it down (destroying it after shutdown_timeout) '
                    'and undefine it' % state)
            return _wake(observed) + [SHUTDOWN] + ([UNDEFINE] if observed.persistent else [])
        steps = [DESTROY] if state == CRASHED else []
        return steps + ([UNDEFINE] if observed.exists and observed.persistent else [])

    if not persistent and target == DEFINED:
        raise PlanError('a transient domain (persistent=false) cannot be defined without running')
    if target == SAVED and not use_save_file and not persistent:
        raise PlanError('managed save needs a persistent domain; give save_file to save a transient one')

    # A transient domain the user declares persistent is defined first, so
    # that whatever follows (shutdown, managed save) keeps it.
    steps = [DEFINE] if persistent and observed.exists and not observed.persistent else []

    if target == DEFINED:
        if state == DEFINED:
            pass
        elif state == ABSENT:
            steps.append(DEFINE)
        elif state == CRASHED:
            steps.append(DESTROY)
        else:
            # Saved memory is restored and the guest shut down cleanly rather
            # than thrown away: nothing the guest had in flight is lost.
            woken = _bring_up(observed, paused=False, persistent=True)
            steps += woken + [SHUTDOWN]
    elif target in (RUNNING, PAUSED):
        steps += _bring_up(observed, paused=target == PAUSED, persistent=persistent)
    elif target == SAVED:
        wanted_image = FILE_IMAGE if use_save_file else MANAGED_IMAGE
        if not (state == SAVED and observed.image == wanted_image):
            if state in (RUNNING, PAUSED, PMSUSPENDED):
                steps += [WAKEUP] if state == PMSUSPENDED else []
            else:
                # A stopped domain has no memory to save: it is saved at the
                # instant it powers on (paused before its first instruction).
                steps += _bring_up(observed, paused=True, persistent=persistent)
            steps.append(SAVE_TO_FILE if use_save_file else MANAGED_SAVE)
    elif target == RESTARTED:
        steps += _bring_up(observed, paused=False, persistent=persistent)
        if state in (RUNNING, PAUSED, PMSUSPENDED, SAVED):
            # The guest's OS was already up: reboot it.  From any other state
            # the start above is the fresh boot.
            steps.append(REBOOT)
    else:
        raise PlanError('unknown state %r' % target)

    if not persistent and observed.persistent and target in (RUNNING, PAUSED, RESTARTED, SAVED):
        # Undefining keeps a running domain running, now transient.
        steps.append(MAKE_TRANSIENT)
    return steps


def reached_state(target):
    """The state a domain is in once `target` has been reached."""
    return RUNNING if target == RESTARTED else target
