# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging one domain to its declared state and definition.

`converge_domain` observes the domain (the facts of `_domain_plan`), plans
with the pure `_domain_plan.plan_domain`, predicts the result and diff from
the plan, then carries the steps out through `Changes` (which skips them in
check mode), one operation per step.  Several domains can be converged with
the same client, one after another or in threads: a convergence keeps its
state in its own object.

A convergence holds the domain's lock (`LibvirtClient.exclusive`), so two
runs converging one domain take turns; when a step is refused because the
domain changed under us (someone else acted), it observes and plans again.

`save_file` is checked by what the file is, not by its name: an existing
file is only overwritten when it is a libvirt save image of this domain
(or an incomplete one), and an image older than the domain's disks is
never restored.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import functools
import os
import stat

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _domain_plan as P
from ansible_collections.lifecycle.libvirt.plugins.module_utils import _states as S
from ansible_collections.lifecycle.libvirt.plugins.module_utils import _sizes, _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._changes import Changes, diff_entry
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtClient, OperationFailed, libvirt
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wait import WaitTimeout, wait_until

# A step refused because the domain changed under us (another actor) is
# retried from a new observation at most this many times in all.
CONVERGE_ATTEMPTS = 3

# The first 16 bytes of a libvirt (QEMU driver) save image; "Part" until
# libvirt finished writing it, "Save" once it is complete.
SAVE_IMAGE_MAGIC = b'LibvirtQemudSave'
PARTIAL_SAVE_IMAGE_MAGIC = b'LibvirtQemudPart'

# The virtio channel the QEMU guest agent talks through.
GUEST_AGENT_CHANNEL = 'org.qemu.guest_agent.0'

# A guest that is still booting misses an ACPI power button press made before
# its handler runs; repeating the request is what a person at the console does.
SHUTDOWN_REPEAT_SECONDS = 5.0

DOMAIN_ARGUMENT_SPEC = dict(
    name=dict(type='str'),
    xml=dict(type='str'),
    state=dict(type='str', default=S.RUNNING, choices=list(S.DECLARABLE_STATES)),
    persistent=dict(type='bool', default=True),
    autostart=dict(type='bool'),
    shutdown_timeout=dict(type='int', default=120),
    force=dict(type='bool', default=False),
    save_file=dict(type='path'),
    restart_on_change=dict(type='bool', default=False),
)


class DomainSpec:
    """The declared domain, validated; built from module parameters."""

    def __init__(self, params):
        self.state = params['state']
        self.persistent = params['persistent']
        self.autostart = params['autostart']
        self.shutdown_timeout = params['shutdown_timeout']
        self.force = params['force']
        self.save_file = params['save_file']
        self.restart_on_change = params['restart_on_change']
        self.declared = None
        try:
            if params['xml'] is not None:
                self.declared = _xml.without_runtime_state(_xml.parse_declaration(params['xml'], 'domain'))
            self.name = _xml.declared_name(params['name'], self.declared, 'domain')
        except _xml.XMLError as exc:
            raise OperationFailed(str(exc))
        self._validate()

    def _validate(self):
        if self.shutdown_timeout < 0:
            raise OperationFailed('shutdown_timeout must be zero or more seconds, got %d' % self.shutdown_timeout)
        if self.save_file is not None and self.state == S.ABSENT:
            raise OperationFailed('save_file is not used with state=absent (removing a domain never deletes save files)')
        if self.autostart is not None and not self.persistent:
            raise OperationFailed('autostart needs a persistent domain (persistent=true)')
        if not self.persistent and self.state == S.DEFINED:
            raise OperationFailed('state=defined needs a persistent domain: a transient domain '
                                  '(persistent=false) exists only while it runs')


def converge_domain(client, spec, check_mode):
    """Bring one domain to `spec`; return the module result (with `diff`:
    LibvirtModule.run keeps it only under --diff).  A failure raises
    OperationFailed carrying the result known so far."""
    with client.exclusive('domain', spec.name):
        return DomainConvergence(client, spec, Changes(check_mode)).run()


def describe_domains(client, name=None, include_xml=False):
    """Facts about one domain (`name`) or all domains of the connection."""
    return client.describe('domain', name, client.domain, client.domains,
                           lambda domain: _describe_domain(client, domain, include_xml), libvirt.VIR_ERR_NO_DOMAIN)


def _describe_domain(client, domain, include_xml):
    name = domain.name()
    what = 'read domain %s' % name
    observed = client.observed_state(domain)
    xml_text = client.call(what, domain.XMLDesc, 0)
    root = _xml.parse_xml(xml_text, 'libvirt XML')
    memory = root.find('memory')
    agent = root.find("devices/channel/target[@name='%s']" % GUEST_AGENT_CHANNEL)
    facts = dict(
        name=name,
        uuid=domain.UUIDString(),
        state=observed.state,
        persistent=observed.persistent,
        autostart=bool(client.call(what, domain.autostart)) if observed.persistent else False,
        managed_save=observed.image == S.MANAGED_IMAGE,
        snapshot_count=client.call(what, domain.snapshotNum, 0),
        vcpus=int(root.findtext('vcpu') or 0),
        memory=_sizes.scaled_bytes(memory) if memory is not None else None,
        disks=[_describe_disk(client, disk) for disk in root.iterfind('devices/disk')],
        interfaces=[_describe_interface(interface) for interface in root.iterfind('devices/interface')],
        # libvirt marks the channel connected while the agent in the guest answers.
        guest_agent=dict(configured=agent is not None, connected=agent is not None and agent.get('state') == 'connected'),
    )
    if include_xml:
        facts['xml'] = xml_text
    return facts


def _describe_disk(client, disk):
    attribute = _xml.attribute_of
    volume = attribute(disk, 'source', 'volume')
    source = (attribute(disk, 'source', 'file') or attribute(disk, 'source', 'dev')
              or attribute(disk, 'source', 'name')
              or ('%s/%s' % (attribute(disk, 'source', 'pool'), volume) if volume else None))
    pool, volume = _volume_of_disk(client, disk)
    return dict(target=attribute(disk, 'target', 'dev'), device=disk.get('device', 'disk'), type=disk.get('type'),
                source=source, format=attribute(disk, 'driver', 'type'), pool=pool, volume=volume)


def _volume_of_disk(client, disk):
    """(pool, volume) names of the storage volume a disk is, as libvirt's own
    lookups find it; (None, None) when no active pool holds it."""
    attribute = _xml.attribute_of
    if disk.get('type') == 'volume':
        pool = client.pool(attribute(disk, 'source', 'pool') or '')
        active = pool is not None and client.call('read storage pool %s' % pool.name(), pool.isActive)
        found = client.volume(pool, attribute(disk, 'source', 'volume') or '') if active else None
    else:
        path = attribute(disk, 'source', 'file') or attribute(disk, 'source', 'dev')
        found = client.volume_by_path(path) if path else None
    if found is None:
        return None, None
    return client.call('read volume %s' % found.name(), found.storagePoolLookupByVolume).name(), found.name()


def _describe_interface(interface):
    attribute = _xml.attribute_of
    source = (attribute(interface, 'source', 'network') or attribute(interface, 'source', 'bridge')
              or attribute(interface, 'source', 'dev'))
    return dict(type=interface.get('type'), mac=attribute(interface, 'mac', 'address'), source=source,
                model=attribute(interface, 'model', 'type'))


class SaveFile:
    """What `path` is on the hypervisor: missing, a complete (`image` holds
    its domain XML) or incomplete libvirt save image, or something else
    (`unusable` says what).

    On a local hypervisor the file itself is examined (lstat, then the
    header read through a descriptor that is the same inode); on a remote
    one only libvirt can read it, so a file libvirt cannot read as an
    image counts as unusable unless libvirt says it does not exist.
    """

    def __init__(self, client, path):
        self.client = client
        self.path = path
        self.unusable = None
        self.mtime_ns = None
        self.image = None  # the domain XML inside a complete image
        if client.is_local:
            self._examine_local()
        else:
            self._read_image()

    def _examine_local(self):
        path = self.path
        try:
            info = os.lstat(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                self.unusable = 'cannot be examined: %s' % exc.strerror
            return
        if stat.S_ISLNK(info.st_mode):
            self.unusable = 'is a symbolic link (to %s)' % os.readlink(path)
            return
        if not stat.S_ISREG(info.st_mode):
            self.unusable = 'is a %s, not a regular file' % _file_kind(info.st_mode)
            return
        try:
            handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                opened = os.fstat(handle)
                magic = os.read(handle, len(SAVE_IMAGE_MAGIC))
            finally:
                os.close(handle)
        except OSError as exc:
            self.unusable = 'cannot be read: %s' % exc.strerror
            return
        if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            self.unusable = 'was replaced while it was examined'
        elif magic == SAVE_IMAGE_MAGIC:
            if self._read_image():
                self.mtime_ns = opened.st_mtime_ns
        elif magic != PARTIAL_SAVE_IMAGE_MAGIC:
            self.unusable = 'exists and is not a libvirt save image'
        # else an incomplete image an interrupted save left: it may be overwritten

    def _read_image(self):
        try:
            text = self.client.save_image_xml(self.path)
        except OperationFailed as exc:
            self.unusable = 'is not a complete libvirt save image (%s)' % exc.libvirt_message
            return False
        if text is not None:  # else there is no such file
            self.image = _xml.parse_xml(text, 'save image XML')
        return text is not None

    def holds(self, domain, name):
        """Whether this is a complete image of `domain` (by uuid), or of the
        domain called `name` when none is defined."""
        if self.image is None:
            return False
        if domain is not None:
            return self.image.findtext('uuid') == domain.UUIDString()
        return self.image.findtext('name') == name

    def newer_disk(self):
        """The first disk of the saved domain changed after the image was
        written (its memory no longer matches that disk), or None.  Known
        on a local hypervisor only."""
        if self.mtime_ns is None:
            return None
        for disk in self.image.iterfind('devices/disk'):
            source = _xml.attribute_of(disk, 'source', 'file')
            try:
                if source and os.stat(source).st_mtime_ns > self.mtime_ns:
                    return source
            except OSError:
                continue  # a missing disk makes the restore fail with libvirt's own message
        return None

    def overwrite_refusal(self, domain, name):
        """Why saving `domain` there would destroy more than an older (or
        incomplete) save image of the same domain; None when it would not."""
        what = 'Refusing to save domain %s to %s: it' % (name, self.path)
        if self.unusable:
            return ('%s %s; give a path that does not exist yet, or an earlier save image of this domain'
                    % (what, self.unusable))
        if self.image is not None and not self.holds(domain, name):
            return '%s holds the saved memory of another domain (%s, uuid %s)' % (
                what, self.image.findtext('name'), self.image.findtext('uuid'))
        return None

    def protect(self):
        """Make the file (on a local hypervisor) readable by its owner only:
        it holds the guest's memory.  An existing image keeps the mode it
        has when libvirt overwrites it, so this runs before and after."""
        if not self.client.is_local:
            return
        try:
            handle = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            raise OperationFailed('Failed to protect %s: %s' % (self.path, exc.strerror))
        try:
            info = os.fstat(handle)
            if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077:
                os.fchmod(handle, 0o600)
        except OSError as exc:
            raise OperationFailed('Failed to make %s readable by its owner only: %s' % (self.path, exc.strerror))
        finally:
            os.close(handle)


def _file_kind(mode):
    for test, kind in ((stat.S_ISDIR, 'directory'), (stat.S_ISCHR, 'character device'),
                       (stat.S_ISBLK, 'block device'), (stat.S_ISFIFO, 'named pipe'), (stat.S_ISSOCK, 'socket')):
        if test(mode):
            return kind
    return 'special file'


class DomainConvergence:
    """Observe the domain (DomainFacts), plan (the pure `plan_domain`),
    predict, and carry the plan out, one operation per step."""

    def __init__(self, client, spec, changes):
        self.client = client
        self.spec = spec
        self.changes = changes
        self.name = spec.name
        self.domain = None
        self.save_file = None
        self.stored = None  # the stored definition (an element), when compared
        self.reconciliation = None  # of the declared XML with it
        self.define_text = None  # the XML the define and create steps hand libvirt
        self._normalised = None
        on = self._on_domain
        self.operations = {
            S.DEFINE: self._define,
            S.CREATE: functools.partial(self._create, 0),
            S.CREATE_PAUSED: functools.partial(self._create, libvirt.VIR_DOMAIN_START_PAUSED),
            S.START: self._start,
            S.START_PAUSED: functools.partial(on, 'start domain %s', 'createWithFlags', libvirt.VIR_DOMAIN_START_PAUSED),
            S.RESUME: functools.partial(on, 'resume domain %s', 'resume'),
            S.SUSPEND: functools.partial(on, 'pause domain %s', 'suspend'),
            S.WAKEUP: functools.partial(on, 'wake up domain %s', 'pMWakeup', 0),
            S.SHUTDOWN: self._shutdown,
            S.DESTROY: functools.partial(on, 'destroy domain %s', 'destroy'),
            S.REBOOT: functools.partial(on, 'reboot domain %s', 'reboot', 0),
            S.MANAGED_SAVE: functools.partial(on, 'save domain %s', 'managedSave', 0),
            S.SAVE_TO_FILE: self._save_to_file,
            S.RESTORE: functools.partial(self._restore, libvirt.VIR_DOMAIN_SAVE_RUNNING),
            S.RESTORE_PAUSED: functools.partial(self._restore, libvirt.VIR_DOMAIN_SAVE_PAUSED),
            S.UNDEFINE: functools.partial(
                on, 'undefine domain %s', 'undefineFlags',
                libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM),
            S.MAKE_TRANSIENT: functools.partial(on, 'make domain %s transient', 'undefineFlags',
                                                libvirt.VIR_DOMAIN_UNDEFINE_KEEP_NVRAM),
            S.SET_AUTOSTART: self._set_autostart,
        }
        self.operations.update((step, functools.partial(self._grow_live, step)) for step in S.LIVE_STEPS)

    def _normalised_declaration(self):
        """The declared XML as libvirt's parser stores it (once per run)."""
        if self._normalised is None:
            parser = LibvirtClient(_xml.NORMALISING_URI)
            try:
                self._normalised = [_xml.normalised_by_libvirt(self.spec.declared, parser)]
            except _xml.XMLError as exc:
                raise OperationFailed('Failed to define domain %s: %s' % (self.name, exc))
            finally:
                parser.close()
        return self._normalised[0]

    def _reconcile(self, stored):
        """Compare the declared XML with `stored` (an element of libvirt's)."""
        return _xml.reconcile(self.spec.declared, stored, self.client.machine_aliases, self._normalised_declaration())

    # observing ----------------------------------------------------------------
    def _observed_state(self):
        self.domain = self.client.domain(self.name)
        file_image = False
        if self.spec.save_file:
            self.save_file = SaveFile(self.client, self.spec.save_file)
            # An image older than the disks is not this domain's state any
            # more (it ran since): a run that restored it does not again.
            file_image = (not (self.domain is not None and self.client.is_active(self.domain))
                          and self.save_file.holds(self.domain, self.name) and self.save_file.newer_disk() is None)
        return self.client.observed_state(self.domain, file_image)

    def _observe(self):
        """The DomainFacts the planner takes; keeps the domain, the save file
        and the reconciliation of the stored definition for carrying out."""
        observed = self._observed_state()
        self.stored, self.reconciliation = self._reconcile_definition(observed)
        save_file = None
        if self.save_file is not None:
            save_file = P.SaveFileFacts(
                self.save_file.overwrite_refusal(self.domain, self.name),
                self.save_file.newer_disk() if self.save_file.holds(self.domain, self.name) else None)
        return P.DomainFacts(observed, self.reconciliation.differences if self.reconciliation else None,
                             self._autostart(observed), self._live_facts(observed), save_file)

    def _xml(self, flags=0):
        return self.client.call('read the XML of %s' % self.name, self.domain.XMLDesc, flags | libvirt.VIR_DOMAIN_XML_SECURE)

    def _autostart(self, observed):
        if not (observed.exists and observed.persistent):
            return False
        return bool(self.client.call('read autostart of %s' % self.name, self.domain.autostart))

    def _reconcile_definition(self, observed):
        """(the stored definition, its reconciliation with the declared XML),
        or (None, None) when there is nothing to compare."""
        if self.spec.declared is None or not observed.exists or self.spec.state == S.ABSENT:
            return None, None
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if observed.persistent else 0
        stored = _xml.parse_xml(self._xml(flags), 'libvirt XML')
        return stored, self._reconcile(stored)

    def _live_facts(self, observed):
        """LiveFacts of the QEMU process that goes on running: the current
        one, or the one a save image restores (from a saved state the plan
        never boots afresh).  None when the domain is not to run or nothing
        is declared."""
        if self.spec.state not in P.RUNNING_TARGETS or self.spec.declared is None:
            return None
        if observed.state == S.SAVED and observed.image == S.FILE_IMAGE:
            live = self.save_file.image  # the domain XML the save file holds
        elif observed.state == S.SAVED:
            live = _xml.parse_xml(self.client.call('read the managed save image of %s' % self.name,
                                                   self.domain.managedSaveGetXMLDesc, 0), 'libvirt XML')
        elif observed.state in (S.RUNNING, S.PAUSED, S.PMSUSPENDED):
            live = _xml.parse_xml(self._xml(), 'libvirt XML')
        else:
            return None
        if not self._reconcile(live).changed:
            return P.LiveFacts(False)
        if observed.state != S.RUNNING:
            return P.LiveFacts(True)
        # Only a running guest answers the balloon and sees what is plugged in.
        from ansible_collections.lifecycle.libvirt.plugins.module_utils import _live  # only when something changes

        growth = _live.Growth(live, self.reconciliation.merged)
        return P.LiveFacts(True, growth.steps, self._reconcile(growth.predicted_live(live)).changed)

    # planning -----------------------------------------------------------------
    def _plan(self, facts):
        try:
            plan = P.plan_domain(facts, self.spec)
        except S.PlanError as exc:
            raise OperationFailed(str(exc))
        if self.spec.declared is not None and plan.builds_from_xml:
            self._preflight(self.reconciliation.merged if self.reconciliation is not None else self.spec.declared)
        return plan

    def _preflight(self, definition):
        """Catch, in check mode too, what would make libvirt refuse the XML:
        what its parser refuses, and an emulator, domain type or machine this
        host lacks (the machine asked about last, so that an unsupported
        domain type is named as such)."""
        self._normalised_declaration()
        os_type = definition.find('os/type')
        arch = os_type.get('arch') if os_type is not None else None
        for machine in (None, os_type.get('machine') if os_type is not None else None):
            self.client.domain_capabilities('define domain %s' % self.name, definition.findtext('devices/emulator'),
                                            arch, machine, definition.get('type'))

    # prediction and diff --------------------------------------------------------
    def _diff(self, facts, plan):
        observed = facts.observed
        diff = [diff_entry('domain %s' % self.name,
                           [('state', observed.state), ('persistent', observed.persistent),
                            ('autostart', facts.autostart)],
                           [('state', plan.state), ('persistent', plan.persistent), ('autostart', plan.autostart)])]
        if self.spec.declared is not None and plan.state != S.ABSENT:
            merged = self.reconciliation.merged if self.reconciliation is not None else self.spec.declared
            diff.append(diff_entry('%s XML (stored definition)' % self.name,
                                   _xml.masked_text(self.stored) if self.stored is not None else '',
                                   _xml.masked_text(merged), after_header='%s XML (declared)' % self.name))
        return diff

    # doing --------------------------------------------------------------------
    def run(self):
        facts = self._observe()
        plan = self._plan(facts)
        result = dict(name=self.name, previous_state=facts.observed.state, actions=self.changes.actions,
                      diff=self._diff(facts, plan), differences=facts.differences or [])
        with self.changes.reporting(result):
            for attempt in range(1, CONVERGE_ATTEMPTS + 1):
                self.define_text = self._define_text(facts.observed)
                try:
                    self.changes.carry_out(plan.steps, self._perform, result)
                    break
                except OperationFailed as exc:
                    again = self._observe() if self._may_have_raced(exc, attempt) else facts
                    if again.observed == facts.observed:
                        raise  # the domain is as it was: libvirt's refusal stands
                    # Someone changed the domain under us: plan from what it is now.
                    facts = again
                    plan = self._plan(facts)
        result.update(self._describe_after(plan))
        return result

    def _may_have_raced(self, failure, attempt):
        """Whether to observe again after `failure`: libvirt refused a step
        of a real run, and attempts are left."""
        return failure.libvirt_code is not None and not self.changes.check_mode and attempt < CONVERGE_ATTEMPTS

    def _define_text(self, observed):
        if self.reconciliation is not None:
            return _xml.to_text(self.reconciliation.merged)
        if self.spec.declared is not None:
            return _xml.to_text(self.spec.declared)
        if observed.exists:
            return self._xml(libvirt.VIR_DOMAIN_XML_INACTIVE)  # making a transient domain persistent
        return None

    def _describe_after(self, plan):
        """state, uuid, persistent, autostart and pending_restart after the
        run: observed again after a real run, the prediction in check mode."""
        if self.changes.check_mode:
            uuid = self.domain.UUIDString() if self.domain is not None else (
                self.spec.declared.findtext('uuid') if self.spec.declared is not None else None)
            return dict(plan.predicted, uuid=None if plan.state == S.ABSENT else uuid,
                        pending_restart=plan.pending_restart)
        after = self._observed_state()
        pending = False
        if self.spec.declared is not None and after.active:
            pending = self._reconcile(_xml.parse_xml(self._xml(), 'libvirt XML')).changed
        return dict(state=after.state,
                    uuid=self.domain.UUIDString() if self.domain is not None else None,
                    persistent=after.persistent, autostart=self._autostart(after), pending_restart=pending)

    def _perform(self, step):
        """Carry out one planned step (never called in check mode)."""
        self.operations[step]()

    def _on_domain(self, what, method, *args):
        """Call `method` of the domain; `what` names the task (%s: the domain)."""
        return self.client.call(what % self.name, getattr(self.domain, method), *args)

    def _define(self):
        self.domain = self.client.define_domain(self.define_text, self.name)

    def _create(self, flags):
        self.domain = self.client.create_domain(self.define_text, flags, self.name)

    def _start(self):
        self._on_domain('start domain %s', 'create')
        if self._on_domain('read the state of %s', 'state')[0] == libvirt.VIR_DOMAIN_PAUSED:
            # A managed save image taken while paused restores paused.
            self._on_domain('resume domain %s', 'resume')

    def _save_to_file(self):
        self.save_file.protect()
        self.client.call('save domain %s to %s' % (self.name, self.spec.save_file), self.domain.save, self.spec.save_file)
        self.save_file.protect()

    def _restore(self, flags):
        self.domain = self.client.restore_domain(self.spec.save_file, flags, self.name)

    def _grow_live(self, step):
        from ansible_collections.lifecycle.libvirt.plugins.module_utils import _live  # only when something changes

        _live.growth_of_defined(self.client, self.domain).perform(self.client, self.domain, step)

    def _set_autostart(self):
        self._on_domain('set autostart of domain %s', 'setAutostart', int(self.spec.autostart))

    def _shutdown(self):
        """Graceful shutdown within shutdown_timeout; destroy after it only
        when forced.  Without force a timeout leaves the domain running."""
        domain, timeout = self.domain, self.spec.shutdown_timeout
        request = [0.0]

        def still_running():
            return self.client.is_active(domain)

        def repeat_request(elapsed):
            if elapsed - request[0] >= SHUTDOWN_REPEAT_SECONDS and still_running():
                request[0] = elapsed
                try:
                    self._on_domain('shut down domain %s', 'shutdown')
                except OperationFailed:
                    pass  # it stopped between the check and the request

        if timeout > 0:
            self._on_domain('shut down domain %s', 'shutdown')
            try:
                wait_until(lambda: not still_running(), timeout, 'graceful shutdown', on_tick=repeat_request)
                return
            except WaitTimeout:
                pass
        if not self.spec.force:
            raise OperationFailed(
                'Failed to shut down domain %s: it did not power off within shutdown_timeout=%d s and is '
                'still running. Set force=true to destroy it after the timeout, or raise shutdown_timeout'
                % (self.name, timeout))
        if still_running():
            self._on_domain('destroy domain %s', 'destroy')
