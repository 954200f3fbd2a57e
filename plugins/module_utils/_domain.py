# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging one domain to its declared state and definition.

`converge_domain` observes the domain, plans the steps with the pure planner
in `_states`, predicts the result and diff from the plan, then carries the
steps out through `Changes` (which skips them in check mode).  A list of
specs can be converged with the same client one after another.

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
import os
import stat

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _states as S
from ansible_collections.lifecycle.libvirt.plugins.module_utils import _sizes, _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._changes import Changes
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtClient, OperationFailed, libvirt
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wait import Stopwatch, WaitTimeout, wait_until

# A step refused because the domain changed under us (another actor) is
# retried from a new observation at most this many times in all.
CONVERGE_ATTEMPTS = 3

# The first 16 bytes of a libvirt (QEMU driver) save image; "Part" until
# libvirt finished writing it, "Save" once it is complete.
SAVE_IMAGE_MAGIC = b'LibvirtQemudSave'
PARTIAL_SAVE_IMAGE_MAGIC = b'LibvirtQemudPart'

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

# Steps after which the domain runs a fresh QEMU process from its definition.
_FRESH_START_STEPS = (S.CREATE, S.CREATE_PAUSED)


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


def converge_domain(client, spec, check_mode, diff_mode=False):
    """Bring one domain to `spec`; return the module result (with `diff`
    when `diff_mode`)."""
    with client.exclusive('domain', spec.name):
        result = _DomainConvergence(client, spec, Changes(check_mode)).run()
    if not diff_mode:
        result.pop('diff')
    return result


def describe_domains(client, name=None, include_xml=False):
    """Facts about one domain (`name`) or all domains of the connection."""
    return client.describe('domain', name, client.domain, client.domains,
                           lambda domain: _describe_domain(client, domain, include_xml), libvirt.VIR_ERR_NO_DOMAIN)


def _describe_domain(client, domain, include_xml):
    name = domain.name()
    call = client.call
    what = 'read domain %s' % name
    state_code = call(what, domain.state)[0]
    persistent = bool(call(what, domain.isPersistent))
    managed_save = persistent and bool(call(what, domain.hasManagedSaveImage, 0))
    xml_text = call(what, domain.XMLDesc, 0)
    root = _xml.parse_xml(xml_text, 'libvirt XML')
    memory = root.find('memory')
    facts = dict(
        name=name,
        uuid=domain.UUIDString(),
        state=S.observed_state(True, state_code, persistent, managed_save).state,
        persistent=persistent,
        autostart=bool(call(what, domain.autostart)) if persistent else False,
        managed_save=managed_save,
        snapshot_count=call(what, domain.snapshotNum, 0),
        vcpus=int(root.findtext('vcpu') or 0),
        memory=_sizes.scaled_bytes(memory) if memory is not None else None,
        disks=[_describe_disk(disk) for disk in root.iterfind('devices/disk')],
        interfaces=[_describe_interface(interface) for interface in root.iterfind('devices/interface')],
    )
    if include_xml:
        facts['xml'] = xml_text
    return facts


def _describe_disk(disk):
    attribute = _xml.attribute_of
    volume = attribute(disk, 'source', 'volume')
    source = (attribute(disk, 'source', 'file') or attribute(disk, 'source', 'dev')
              or attribute(disk, 'source', 'name')
              or ('%s/%s' % (attribute(disk, 'source', 'pool'), volume) if volume else None))
    return dict(target=attribute(disk, 'target', 'dev'), device=disk.get('device', 'disk'), type=disk.get('type'),
                source=source, format=attribute(disk, 'driver', 'type'))


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
            self._read_image(remote=True)

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
            self.mtime_ns = opened.st_mtime_ns
            self._read_image(remote=False)
        elif magic != PARTIAL_SAVE_IMAGE_MAGIC:
            self.unusable = 'exists and is not a libvirt save image'
        # else an incomplete image an interrupted save left: it may be overwritten

    def _read_image(self, remote):
        try:
            text = self.client.conn.saveImageGetXMLDesc(self.path, 0)
        except libvirt.libvirtError as exc:
            if not (remote and exc.get_error_code() == libvirt.VIR_ERR_SYSTEM_ERROR and exc.get_int1() == errno.ENOENT):
                self.unusable = 'is not a complete libvirt save image (%s)' % exc.get_error_message()
            return
        self.image = _xml.parse_xml(text, 'save image XML')

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

    def refuse_overwrite(self, domain, name):
        """Fail unless saving `domain` there destroys nothing but an older
        (or incomplete) save image of the same domain."""
        what = 'Refusing to save domain %s to %s: it' % (name, self.path)
        if self.unusable:
            raise OperationFailed('%s %s; give a path that does not exist yet, or an earlier save image of '
                                  'this domain' % (what, self.unusable))
        if self.image is not None and not self.holds(domain, name):
            raise OperationFailed('%s holds the saved memory of another domain (%s, uuid %s)' % (
                what, self.image.findtext('name'), self.image.findtext('uuid')))

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


class _DomainConvergence:
    def __init__(self, client, spec, changes):
        self.client = client
        self.spec = spec
        self.changes = changes
        self.name = spec.name
        self.domain = None
        self.save_file = None
        self._normalised = None

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
    def _observe(self):
        self.domain = self.client.domain(self.name)
        domain = self.domain
        active = domain is not None and self.client.is_active(domain)
        file_image = False
        if self.spec.save_file:
            self.save_file = SaveFile(self.client, self.spec.save_file)
            # An image older than the disks is not this domain's state any
            # more (it ran since): a run that restored it does not again.
            file_image = (not active and self.save_file.holds(domain, self.name)
                          and self.save_file.newer_disk() is None)
        if domain is None:
            return S.observed_state(False, file_image=file_image)
        state_code = self.client.call('read the state of %s' % self.name, domain.state)[0]
        persistent = bool(self.client.call('read %s' % self.name, domain.isPersistent))
        managed_save = persistent and bool(self.client.call('read %s' % self.name, domain.hasManagedSaveImage, 0))
        return S.observed_state(True, state_code, persistent, managed_save, file_image)

    def _xml(self, flags=0):
        return self.client.call('read the XML of %s' % self.name, self.domain.XMLDesc, flags | libvirt.VIR_DOMAIN_XML_SECURE)

    def _autostart(self, observed):
        if not (observed.exists and observed.persistent):
            return False
        return bool(self.client.call('read autostart of %s' % self.name, self.domain.autostart))

    # planning -----------------------------------------------------------------
    def _reconcile_definition(self, observed):
        """Compare the declared XML with the stored definition.  Returns
        (current definition element or None, reconciliation or None)."""
        if self.spec.declared is None or not observed.exists or self.spec.state == S.ABSENT:
            return None, None
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if observed.persistent else 0
        current = _xml.parse_xml(self._xml(flags), 'libvirt XML')
        return current, self._reconcile(current)

    def _live_definition_after(self, observed, steps):
        """The XML the running QEMU process will have after `steps`: the
        current one if it keeps running, a save image's if one is restored,
        None if the domain ends stopped or starts afresh from its definition."""
        if self.spec.state not in (S.RUNNING, S.PAUSED, S.RESTARTED) or self.spec.declared is None:
            return None
        if observed.state == S.SAVED:
            if observed.image == S.FILE_IMAGE:
                return self.client.call('read save image %s' % self.spec.save_file,
                                        self.client.conn.saveImageGetXMLDesc, self.spec.save_file, 0)
            return self.client.call('read the managed save image of %s' % self.name,
                                    self.domain.managedSaveGetXMLDesc, 0)
        if observed.state in (S.RUNNING, S.PAUSED, S.PMSUSPENDED) and not any(s in _FRESH_START_STEPS for s in steps):
            return self._xml()
        return None

    def _differs_from_live(self, live_xml):
        if live_xml is None:
            return False
        live = _xml.parse_xml(live_xml, 'libvirt XML')
        return self._reconcile(live).changed

    def _preflight(self, definition):
        """Catch, in check mode too, what would make libvirt refuse the XML:
        what its parser refuses, and an emulator, domain type or machine this
        host lacks (the machine asked about last, so that an unsupported
        domain type is named as such)."""
        self._normalised_declaration()
        os_type = definition.find('os/type')
        arch = os_type.get('arch') if os_type is not None else None
        for machine in (None, os_type.get('machine') if os_type is not None else None):
            self.client.call('define domain %s' % self.name, self.client.conn.getDomainCapabilities,
                             definition.findtext('devices/emulator'), arch, machine, definition.get('type'), 0)

    def _plan(self, observed, reconciliation):
        spec = self.spec
        try:
            steps = S.plan_transition(observed, spec.state, spec.persistent, spec.force, bool(spec.save_file))
        except S.PlanError as exc:
            raise OperationFailed('Cannot make domain %s %s: %s' % (self.name, spec.state, exc))
        creates = S.DEFINE in steps or S.CREATE in steps or S.CREATE_PAUSED in steps
        if creates and not observed.exists and spec.declared is None:
            raise OperationFailed('domain %s does not exist; xml is required to create it' % self.name)
        self._check_save_file(observed, steps)
        if reconciliation is not None and reconciliation.changed:
            if not observed.persistent and S.DEFINE not in steps:
                raise OperationFailed(
                    'domain %s is transient and runs with a different definition (%s); a transient '
                    'definition cannot be changed: stop it, or declare it persistent'
                    % (self.name, '; '.join(reconciliation.differences)))
            if S.DEFINE not in steps:
                steps.insert(0, S.DEFINE)
        if spec.declared is not None and any(s in (S.DEFINE, S.CREATE, S.CREATE_PAUSED) for s in steps):
            self._preflight(reconciliation.merged if reconciliation is not None else spec.declared)
        live_xml = self._live_definition_after(observed, steps)
        pending = self._differs_from_live(live_xml)
        if pending and observed.state == S.RUNNING and spec.state == S.RUNNING and not spec.restart_on_change:
            # Only a running guest answers the balloon and sees what is plugged in.
            pending = self._grow_live(live_xml, reconciliation, steps)
        if pending and (spec.restart_on_change or spec.state == S.RESTARTED):
            # A reboot keeps the QEMU process and its old configuration; only
            # a power cycle applies the new definition.
            steps = [s for s in steps if s != S.REBOOT]
            steps += [S.SHUTDOWN, S.START_PAUSED if spec.state == S.PAUSED else S.START]
            pending = False
        if spec.autostart is not None and spec.autostart != self._autostart(observed):
            steps.append(S.SET_AUTOSTART)
        return steps, pending

    def _grow_live(self, live_xml, reconciliation, steps):
        """Add the steps that give the running domain what libvirt can
        apply live (_live.Growth); whether a restart is still pending."""
        from ansible_collections.lifecycle.libvirt.plugins.module_utils import _live  # only when something changes

        live = _xml.parse_xml(live_xml, 'libvirt XML')
        growth = _live.Growth(live, reconciliation.merged)
        steps += growth.steps
        return self._reconcile(growth.predicted_live(live)).changed

    def _check_save_file(self, observed, steps):
        """Refuse, in check mode too, to overwrite what is not an earlier
        save image of this domain, and to restore an image older than the
        domain's disks."""
        save_file = self.save_file
        if save_file is None:
            return
        if S.SAVE_TO_FILE in steps:
            save_file.refuse_overwrite(self.domain, self.name)
        newer_disk = save_file.newer_disk() if save_file.holds(self.domain, self.name) else None
        if newer_disk and not observed.active and self.spec.state in (S.RUNNING, S.PAUSED, S.RESTARTED):
            raise OperationFailed(
                'Refusing to restore domain %s from %s: the image is older than its disk %s (the guest ran after '
                'it was saved), so the memory in it no longer matches the disk. Remove the file, or leave out '
                'save_file to boot the domain afresh' % (self.name, save_file.path, newer_disk))

    # prediction and diff --------------------------------------------------------
    def _predicted(self, observed, steps):
        """state, persistent and autostart once `steps` have run."""
        target = S.reached_state(self.spec.state)
        persistent = self.spec.persistent and target != S.ABSENT
        autostart = self.spec.autostart if S.SET_AUTOSTART in steps else self._autostart(observed)
        return dict(state=target, persistent=persistent, autostart=bool(autostart) and persistent)

    @staticmethod
    def _summary(state, persistent, autostart):
        return 'state: %s\npersistent: %s\nautostart: %s\n' % (
            state, str(persistent).lower(), str(autostart).lower())

    def _diff(self, observed, predicted, current, reconciliation):
        header = 'domain %s' % self.name
        diff = [dict(before_header=header, after_header=header,
                     before=self._summary(observed.state, observed.persistent, self._autostart(observed)),
                     after=self._summary(**predicted))]
        if self.spec.declared is not None and predicted['state'] != S.ABSENT:
            merged = reconciliation.merged if reconciliation is not None else self.spec.declared
            diff.append(dict(before_header='%s XML (stored definition)' % self.name,
                             after_header='%s XML (declared)' % self.name,
                             before=_xml.masked_text(current) if current is not None else '',
                             after=_xml.masked_text(merged)))
        return diff

    # doing --------------------------------------------------------------------
    def run(self):
        watch = Stopwatch()
        observed = self._observe()
        current, reconciliation = self._reconcile_definition(observed)
        steps, pending = self._plan(observed, reconciliation)
        predicted = self._predicted(observed, steps)
        result = dict(name=self.name, previous_state=observed.state, actions=self.changes.actions,
                      diff=self._diff(observed, predicted, current, reconciliation),
                      differences=reconciliation.differences if reconciliation is not None else [])
        try:
            for attempt in range(1, CONVERGE_ATTEMPTS + 1):
                try:
                    self._carry_out(steps, self._define_xml(reconciliation, observed))
                    break
                except OperationFailed as exc:
                    again = self._observe() if self._may_have_raced(exc, attempt) else observed
                    if again == observed:
                        raise  # the domain is as it was: libvirt's refusal stands
                    # Someone changed the domain under us: plan from what it is now.
                    observed = again
                    reconciliation = self._reconcile_definition(observed)[1]
                    steps, pending = self._plan(observed, reconciliation)
        except OperationFailed as exc:
            exc.result.update(result, changed=self.changes.changed, duration=watch.rounded())
            raise
        result.update(self._describe_after(predicted, pending), changed=self.changes.changed, duration=watch.rounded())
        return result

    def _carry_out(self, steps, define_xml):
        for step in steps:
            self.changes.apply(step, self._perform, step, define_xml)

    def _may_have_raced(self, failure, attempt):
        """Whether to observe again after `failure`: libvirt refused a step
        of a real run, and attempts are left."""
        return failure.libvirt_code is not None and not self.changes.check_mode and attempt < CONVERGE_ATTEMPTS

    def _define_xml(self, reconciliation, observed):
        if reconciliation is not None:
            return _xml.to_text(reconciliation.merged)
        if self.spec.declared is not None:
            return _xml.to_text(self.spec.declared)
        if observed.exists:
            return self._xml(libvirt.VIR_DOMAIN_XML_INACTIVE)  # making a transient domain persistent
        return None

    def _describe_after(self, predicted, pending):
        """state, uuid, persistent and autostart after the run: observed
        again after a real run, the prediction in check mode."""
        if self.changes.check_mode:
            uuid = self.domain.UUIDString() if self.domain is not None else (
                self.spec.declared.findtext('uuid') if self.spec.declared is not None else None)
            return dict(predicted, uuid=None if predicted['state'] == S.ABSENT else uuid, pending_restart=pending)
        after = self._observe()
        live = self._xml() if (self.spec.declared is not None and after.active) else None
        return dict(state=after.state,
                    uuid=self.domain.UUIDString() if self.domain is not None else None,
                    persistent=after.persistent, autostart=self._autostart(after),
                    pending_restart=self._differs_from_live(live))

    def _perform(self, step, define_xml):
        """Carry out one planned step (never called in check mode)."""
        from ansible_collections.lifecycle.libvirt.plugins.module_utils import _live  # only when something changes

        name, conn, call = self.name, self.client.conn, self.client.call
        if step == S.DEFINE:
            # As `virsh define` does: libvirt's parser decides, not the schema
            # (libvirt 9.0's schema refuses XML its parser accepts).
            self.domain = call('define domain %s' % name, conn.defineXML, define_xml)
        elif step in (S.CREATE, S.CREATE_PAUSED):
            flags = libvirt.VIR_DOMAIN_START_PAUSED if step == S.CREATE_PAUSED else 0
            self.domain = call('create domain %s' % name, conn.createXML, define_xml, flags)
        elif step == S.START:
            call('start domain %s' % name, self.domain.create)
            if call('read the state of %s' % name, self.domain.state)[0] == libvirt.VIR_DOMAIN_PAUSED:
                # A managed save image taken while paused restores paused.
                call('resume domain %s' % name, self.domain.resume)
        elif step == S.START_PAUSED:
            call('start domain %s' % name, self.domain.createWithFlags, libvirt.VIR_DOMAIN_START_PAUSED)
        elif step == S.RESUME:
            call('resume domain %s' % name, self.domain.resume)
        elif step == S.SUSPEND:
            call('pause domain %s' % name, self.domain.suspend)
        elif step == S.WAKEUP:
            call('wake up domain %s' % name, self.domain.pMWakeup, 0)
        elif step == S.SHUTDOWN:
            self._shutdown()
        elif step == S.DESTROY:
            call('destroy domain %s' % name, self.domain.destroy)
        elif step == S.REBOOT:
            call('reboot domain %s' % name, self.domain.reboot, 0)
        elif step == S.MANAGED_SAVE:
            call('save domain %s' % name, self.domain.managedSave, 0)
        elif step == S.SAVE_TO_FILE:
            self.save_file.protect()
            call('save domain %s to %s' % (name, self.spec.save_file), self.domain.save, self.spec.save_file)
            self.save_file.protect()
        elif step in (S.RESTORE, S.RESTORE_PAUSED):
            flags = libvirt.VIR_DOMAIN_SAVE_PAUSED if step == S.RESTORE_PAUSED else libvirt.VIR_DOMAIN_SAVE_RUNNING
            call('restore domain %s from %s' % (name, self.spec.save_file),
                 conn.restoreFlags, self.spec.save_file, None, flags)
            self.domain = self.client.domain(name)
        elif step == S.UNDEFINE:
            call('undefine domain %s' % name, self.domain.undefineFlags,
                 libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                 | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        elif step == S.MAKE_TRANSIENT:
            call('make domain %s transient' % name, self.domain.undefineFlags, libvirt.VIR_DOMAIN_UNDEFINE_KEEP_NVRAM)
        elif step in _live.LIVE_STEPS:
            _live.growth_of_defined(self.client, self.domain).perform(self.client, self.domain, step)
        elif step == S.SET_AUTOSTART:
            call('set autostart of domain %s' % name, self.domain.setAutostart, int(self.spec.autostart))
        else:  # pragma: no cover - the planner only emits the steps above
            raise OperationFailed('unknown step %s' % step)

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
                    domain.shutdown()
                except libvirt.libvirtError:
                    pass  # it stopped between the check and the request

        if timeout > 0:
            self.client.call('shut down domain %s' % self.name, domain.shutdown)
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
            self.client.call('destroy domain %s' % self.name, domain.destroy)
