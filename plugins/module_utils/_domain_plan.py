# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole plan of one domain's convergence, as a pure function.

`plan_domain(facts, spec)` takes what the converger observed (`DomainFacts`:
plain values read from libvirt and the files beforehand) and the declared
spec, and returns a `DomainPlan`: the steps, whether a restart stays pending,
and the state, persistence and autostart the domain has afterwards.  Nothing
here talks to libvirt, so the plan can be unit tested, and check mode (which
only plans) and the real run (which plans, then carries the plan out) cannot
disagree.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _states as S

# Declared states whose domain runs afterwards: only for them does the
# configuration of the running QEMU process matter.
RUNNING_TARGETS = (S.RUNNING, S.PAUSED, S.RESTARTED)

# Steps that build the domain from the declared (or stored) XML.
_FROM_XML_STEPS = (S.DEFINE, S.CREATE, S.CREATE_PAUSED)


class LiveFacts:
    """The configuration of the QEMU process that goes on running (the one
    running now, or the one a save image restores) against the declaration:
    whether it `differs`, the `growth_steps` that give a running domain what
    libvirt can apply live (_live.Growth), and whether it still
    `differs_after_growth`."""

    def __init__(self, differs, growth_steps=(), differs_after_growth=None):
        self.differs = differs
        self.growth_steps = list(growth_steps)
        self.differs_after_growth = differs if differs_after_growth is None else differs_after_growth


class SaveFileFacts:
    """What save_file is: `overwrite_refusal` says why saving there would
    destroy something else (None when it would not); `newer_disk` names a
    disk written after the image of this domain was (its memory no longer
    matches it), None otherwise."""

    def __init__(self, overwrite_refusal=None, newer_disk=None):
        self.overwrite_refusal = overwrite_refusal
        self.newer_disk = newer_disk


class DomainFacts:
    """What was observed before anything is changed: the `observed` state
    (_states.Observed), the `differences` of the stored definition from the
    declared one (None when not compared), the current `autostart`, the
    `live` facts (LiveFacts, None when nothing keeps running with a
    configuration of its own) and the `save_file` facts (None without
    save_file)."""

    def __init__(self, observed, differences=None, autostart=False, live=None, save_file=None):
        self.observed = observed
        self.differences = differences
        self.autostart = autostart
        self.live = live
        self.save_file = save_file


class DomainPlan:
    """The steps to carry out, whether the running domain still lacks some
    of its definition afterwards (`pending_restart`), and the `state`,
    `persistent` and `autostart` it has once the steps have run."""

    def __init__(self, steps, pending_restart, state, persistent, autostart):
        self.steps = steps
        self.pending_restart = pending_restart
        self.state = state
        self.persistent = persistent
        self.autostart = autostart

    @property
    def builds_from_xml(self):
        """Whether a step hands libvirt the XML to build the domain from."""
        return any(step in _FROM_XML_STEPS for step in self.steps)

    @property
    def predicted(self):
        return dict(state=self.state, persistent=self.persistent, autostart=self.autostart)


def plan_domain(facts, spec):
    """The DomainPlan from `facts` (DomainFacts) to `spec` (the DomainSpec:
    name, state, persistent, autostart, force, save_file, restart_on_change,
    declared).  Raises _states.PlanError with the whole message when the
    declaration cannot be reached."""
    observed = facts.observed
    try:
        steps = S.plan_transition(observed, spec.state, spec.persistent, spec.force, spec.save_file is not None)
    except S.PlanError as exc:
        raise S.PlanError('Cannot make domain %s %s: %s' % (spec.name, spec.state, exc))
    if not observed.exists and spec.declared is None and any(step in _FROM_XML_STEPS for step in steps):
        raise S.PlanError('domain %s does not exist; xml is required to create it' % spec.name)
    _check_save_file(facts, spec, steps)
    if facts.differences and S.DEFINE not in steps:
        if not observed.persistent:
            raise S.PlanError(
                'domain %s is transient and runs with a different definition (%s); a transient '
                'definition cannot be changed: stop it, or declare it persistent'
                % (spec.name, '; '.join(facts.differences)))
        steps.insert(0, S.DEFINE)
    live = facts.live if spec.state in RUNNING_TARGETS else None
    pending = live is not None and live.differs
    if pending and observed.state == S.RUNNING and spec.state == S.RUNNING and not spec.restart_on_change:
        # Only a running guest answers the balloon and sees what is plugged in.
        steps += live.growth_steps
        pending = live.differs_after_growth
    if pending and (spec.restart_on_change or spec.state == S.RESTARTED):
        # A reboot keeps the QEMU process and its old configuration; only
        # a power cycle applies the new definition.
        steps = [step for step in steps if step != S.REBOOT]
        steps += [S.SHUTDOWN, S.START_PAUSED if spec.state == S.PAUSED else S.START]
        pending = False
    if spec.autostart is not None and spec.autostart != facts.autostart:
        steps.append(S.SET_AUTOSTART)
    state = S.reached_state(spec.state)
    persistent = spec.persistent and state != S.ABSENT
    autostart = spec.autostart if S.SET_AUTOSTART in steps else facts.autostart
    return DomainPlan(steps, pending, state, persistent, bool(autostart) and persistent)


def _check_save_file(facts, spec, steps):
    """Refuse to overwrite what is not an earlier save image of this domain,
    and to restore an image older than the domain's disks."""
    save_file = facts.save_file
    if save_file is None:
        return
    if S.SAVE_TO_FILE in steps and save_file.overwrite_refusal:
        raise S.PlanError(save_file.overwrite_refusal)
    if save_file.newer_disk and not facts.observed.active and spec.state in RUNNING_TARGETS:
        raise S.PlanError(
            'Refusing to restore domain %s from %s: the image is older than its disk %s (the guest ran after '
            'it was saved), so the memory in it no longer matches the disk. Remove the file, or leave out '
            'save_file to boot the domain afresh' % (spec.name, spec.save_file, save_file.newer_disk))
