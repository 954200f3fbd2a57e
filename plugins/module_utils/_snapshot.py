# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain snapshots: create, revert, delete, retention, and facts.

`converge_snapshot` observes the domain and its snapshots (`Observed`), and
a pure planner turns that and the declaration into a `Plan`: the steps, the
diff they produce and the result they predict.  `SnapshotConvergence` then
carries the steps out through `Changes`, so check mode predicts the real
run.  Everything above "Talking to libvirt" is pure and unit tested.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import os
import stat
import time

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _states as S
from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._changes import Changes, diff_entry
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import (
    OperationFailed, libvirt, version_text)

PRESENT = 'present'
REVERTED = 'reverted'
SNAPSHOT_STATES = (PRESENT, S.ABSENT, REVERTED)
REVERT_STATES = (S.RUNNING, S.PAUSED, S.DEFINED)
KEEP_CHILDREN = 'keep'
DELETE_CHILDREN = 'delete'

# The state libvirt records for a disk-only snapshot: no domain state is kept.
DISK_SNAPSHOT = 'disk-snapshot'

# Steps (the `actions` a result lists).
CREATE = 'create'
DELETE = 'delete'
DELETE_WITH_CHILDREN = 'delete_with_children'
REVERT = 'revert'
REVERT_RUNNING = 'revert_running'
REVERT_PAUSED = 'revert_paused'
STOP = 'stop'

# libvirt versions (as getLibVersion reports them) that first did these.
EXTERNAL_DELETE_VERSION = 9000000
EXTERNAL_REVERT_VERSION = 9007000

AGENT_CHANNEL = 'org.qemu.guest_agent.0'

# The snapshot's <state> in the collection's vocabulary (_states).
_SNAPSHOT_STATE_NAMES = {
    'running': S.RUNNING,
    'blocked': S.RUNNING,
    'nostate': S.RUNNING,
    'shutdown': S.RUNNING,
    'paused': S.PAUSED,
    'shutoff': S.DEFINED,
    'crashed': S.CRASHED,
    'pmsuspended': S.PMSUSPENDED,
    DISK_SNAPSHOT: DISK_SNAPSHOT,
}

SNAPSHOT_ARGUMENT_SPEC = dict(
    domain=dict(type='str', required=True),
    name=dict(type='str'),
    state=dict(type='str', default=PRESENT, choices=list(SNAPSHOT_STATES)),
    description=dict(type='str'),
    disk_only=dict(type='bool', default=False),
    disks=dict(type='list', elements='dict', options=dict(
        target=dict(type='str', required=True),
        file=dict(type='path'),
    )),
    quiesce=dict(type='bool', default=False),
    atomic=dict(type='bool', default=False),
    revert_state=dict(type='str', choices=list(REVERT_STATES)),
    children=dict(type='str', default=KEEP_CHILDREN, choices=[KEEP_CHILDREN, DELETE_CHILDREN]),
    keep=dict(type='int'),
    name_prefix=dict(type='str'),
)

SNAPSHOT_INFO_ARGUMENT_SPEC = dict(
    domain=dict(type='str', required=True),
)


# Pure planning ----------------------------------------------------------------------

def summarize(xml_text, current=False):
    """The facts of one snapshot from its XML (as getXMLDesc returns it)."""
    root = _xml.parse_xml(xml_text, 'snapshot XML')
    memory = root.find('memory')
    memory_kind = memory.get('snapshot') if memory is not None else None
    libvirt_state = (root.findtext('state') or '').strip()
    state = _SNAPSHOT_STATE_NAMES.get(libvirt_state, libvirt_state)
    if memory_kind is None:
        # Old metadata without <memory>: a snapshot of an active domain has it.
        memory_kind = 'internal' if state in (S.RUNNING, S.PAUSED) else 'no'
    disks = []
    for disk in root.iterfind('disks/disk'):
        source = disk.find('source')
        disks.append(dict(target=disk.get('name'), snapshot=disk.get('snapshot'),
                          file=source.get('file') if source is not None else None))
    creation = root.findtext('creationTime')
    return dict(
        name=(root.findtext('name') or '').strip(),
        parent=(root.findtext('parent/name') or '').strip() or None,
        description=root.findtext('description'),
        creation_time=int(creation) if creation and creation.strip().isdigit() else None,
        state=state,
        memory=memory_kind != 'no',
        # libvirt records a stopped domain's disk-only snapshot as shutoff.
        disk_only=state == DISK_SNAPSHOT or (memory_kind == 'no' and any(d['snapshot'] == 'external' for d in disks)),
        external=memory_kind == 'external' or any(d['snapshot'] == 'external' for d in disks),
        disks=disks,
        current=bool(current),
    )


def _depth(snapshot, by_name):
    depth, parent = 0, snapshot['parent']
    while parent in by_name and depth <= len(by_name):
        depth, parent = depth + 1, by_name[parent]['parent']
    return depth


def oldest_first(snapshots):
    """Snapshots ordered by creation time; within one second a parent comes
    before its children, then names decide."""
    by_name = dict((s['name'], s) for s in snapshots)
    return sorted(snapshots, key=lambda s: (s['creation_time'] or 0, _depth(s, by_name), s['name']))


def descendants(snapshots, name):
    """Names of every snapshot below `name`, oldest first."""
    found = []
    wanted = set([name])
    for snapshot in oldest_first(snapshots):
        if snapshot['parent'] in wanted:
            wanted.add(snapshot['name'])
            found.append(snapshot['name'])
    return found


def tree(snapshots):
    """The snapshots as nested {name, current, children} dicts, roots first, oldest first."""
    ordered = oldest_first(snapshots)
    names = set(s['name'] for s in ordered)

    def node(snapshot):
        return dict(name=snapshot['name'], current=snapshot['current'],
                    children=[node(c) for c in ordered if c['parent'] == snapshot['name']])

    return [node(s) for s in ordered if s['parent'] not in names]


def retention_victims(snapshots, keep, prefix=None):
    """Names to delete so that only the newest `keep` snapshots (of those
    whose name starts with `prefix`, when given) remain; oldest first."""
    candidates = [s['name'] for s in oldest_first(snapshots) if prefix is None or s['name'].startswith(prefix)]
    return candidates[:max(len(candidates) - keep, 0)]


def generated_name(prefix=None, now=None):
    """A name from the current Unix time, as virsh gives one."""
    return '%s%d' % (prefix or '', int(time.time() if now is None else now))


def snapshot_xml(name, description=None, disks=None):
    """The <domainsnapshot> to create; `disks` lists (target, file) for
    disk-only snapshots whose overlays the user names."""
    root = _xml.etree.Element('domainsnapshot')
    _xml.etree.SubElement(root, 'name').text = name
    if description:
        _xml.etree.SubElement(root, 'description').text = description
    if disks:
        disks_element = _xml.etree.SubElement(root, 'disks')
        for target, path in disks:
            disk = _xml.etree.SubElement(disks_element, 'disk', name=target, snapshot='external')
            if path:
                _xml.etree.SubElement(disk, 'source', file=path)
    return root


def agent_connected(domain_xml):
    """(connected, why not) for the QEMU guest agent, from the live domain XML."""
    root = _xml.parse_xml(domain_xml, 'domain XML')
    for channel in root.iterfind('devices/channel'):
        target = channel.find('target')
        if target is not None and target.get('name') == AGENT_CHANNEL:
            if target.get('state') == 'connected':
                return True, None
            return False, 'the guest agent is not connected (nothing answers on its %s channel)' % AGENT_CHANNEL
    return False, 'the guest agent is not connected: the domain has no %s channel' % AGENT_CHANNEL


def disk_targets(domain_xml):
    root = _xml.parse_xml(domain_xml, 'domain XML')
    return [t.get('dev') for t in root.iterfind('devices/disk/target')]


def snapshot_disks(domain_xml):
    """(target, source file) of each disk libvirt snapshots by default: a
    writable disk (not a cdrom or floppy, not read-only, not snapshot='no')."""
    root = _xml.parse_xml(domain_xml, 'domain XML')
    disks = []
    for disk in root.iterfind('devices/disk'):
        if disk.get('device', 'disk') not in ('disk', 'lun') or disk.find('readonly') is not None:
            continue
        if disk.get('snapshot') == 'no':
            continue
        source = disk.find('source')
        disks.append((disk.find('target').get('dev'), source.get('file') if source is not None else None))
    return disks


def default_overlay(image, name):
    """The overlay file libvirt names for a disk-only snapshot `name` of
    `image`: the image's suffix replaced by the snapshot name."""
    directory, base = os.path.split(image)
    stem = base.rsplit('.', 1)[0] if '.' in base else base
    return os.path.join(directory, '%s.%s' % (stem, name))


def overlay_refusal(path):
    """Why a new overlay file must not be made at `path` (None when it may):
    libvirt would write through a symlink or onto a device node, or refuse
    an existing file only after being asked."""
    try:
        info = os.lstat(path)
    except OSError:
        info = None
    if info is not None:
        if stat.S_ISLNK(info.st_mode):
            return '%s is a symbolic link (to %s)' % (path, os.readlink(path))
        if stat.S_ISBLK(info.st_mode) or stat.S_ISCHR(info.st_mode):
            return '%s is a device node; an overlay there would overwrite the device' % path
        return '%s already exists' % path
    if not os.path.isdir(os.path.dirname(path)):
        return 'the directory of %s does not exist' % path
    return None


def invalid_name(name):
    """Why `name` cannot name a snapshot (None when it can): libvirt puts it
    into file names of external overlays and C strings."""
    if name is not None and (not name or '/' in name or '\0' in name or '..' in name):
        return 'a snapshot name must not be empty or contain "/", ".." or NUL, got %r' % name
    return None


def effective_parent(snapshot, by_name, removed):
    """The parent `snapshot` will have once the snapshots in `removed` are
    deleted (libvirt attaches children to their grandparent)."""
    parent = snapshot['parent']
    while parent in removed and parent in by_name:
        parent = by_name[parent]['parent']
    return parent


def predicted_kind(domain_state, disk_only):
    """(state, memory) of a snapshot created now: what libvirt records."""
    if disk_only:
        # libvirt keeps no domain state for an active domain's disk-only
        # snapshot, and records a stopped one's as shutoff.
        return (DISK_SNAPSHOT if domain_state in (S.RUNNING, S.PAUSED) else S.DEFINED), False
    if domain_state in (S.RUNNING, S.PAUSED):
        return domain_state, True
    return S.DEFINED, False


def revert_steps(snapshot, revert_state=None):
    """The steps of a revert to `snapshot`, and the state they leave the
    domain in.  Without `revert_state` the domain ends as it was when the
    snapshot was taken."""
    natural = snapshot['state'] if snapshot['memory'] and snapshot['state'] in (S.RUNNING, S.PAUSED) else S.DEFINED
    wanted = revert_state or natural
    if wanted == natural:
        return [REVERT], natural
    if wanted == S.RUNNING:
        return [REVERT_RUNNING], S.RUNNING
    if wanted == S.PAUSED:
        return [REVERT_PAUSED], S.PAUSED
    # Stopped although the snapshot holds memory: come back paused (the
    # guest runs no further) and power off.
    return [REVERT_PAUSED, STOP], S.DEFINED


def describe_text(snapshot, domain):
    """A readable account of a snapshot, for diffs."""
    if snapshot['disk_only']:
        kind = 'disk-only'
    elif snapshot['memory']:
        kind = 'disks and memory'
    else:
        kind = 'disks'
    lines = ['domain: %s' % domain, 'snapshot: %s' % snapshot['name'],
             'kind: %s, %s' % ('external' if snapshot['external'] else 'internal', kind),
             'domain state: %s' % snapshot['state']]
    if snapshot['parent']:
        lines.append('parent: %s' % snapshot['parent'])
    if snapshot['description']:
        lines.append('description: %s' % snapshot['description'])
    for disk in snapshot['disks']:
        if disk['snapshot'] == 'external':
            lines.append('disk %s: overlay %s' % (disk['target'], disk['file'] or "(libvirt's default name)"))
    return '\n'.join(lines) + '\n'


class SnapshotSpec:
    """The declared snapshot, validated; built from module parameters."""

    def __init__(self, params):
        self.domain = params['domain']
        self.name = params['name']
        self.state = params['state']
        self.description = params['description']
        self.disk_only = params['disk_only']
        self.disks = [(d['target'], d['file']) for d in params['disks'] or []]
        self.quiesce = params['quiesce']
        self.atomic = params['atomic']
        self.revert_state = params['revert_state']
        self.children = params['children']
        self.keep = params['keep']
        self.name_prefix = params['name_prefix']
        self._validate()

    def _validate(self):
        fail = self.fail
        for name in (self.name, self.name_prefix):
            if invalid_name(name):
                fail(invalid_name(name))
        if self.state == REVERTED and not self.name:
            fail('state=reverted needs the name of the snapshot to revert to')
        if self.disks and not self.disk_only:
            fail('disks names the overlay files of an external snapshot: it needs disk_only=true')
        targets = [target for target, _path in self.disks]
        if len(set(targets)) != len(targets):
            fail('disks names a target more than once: %s' % ', '.join(targets))
        for target, path in self.disks:
            if path and not os.path.isabs(path):
                fail('the overlay file of disk %s must be an absolute path, got %s' % (target, path))
        if self.quiesce and not self.disk_only:
            fail('quiesce needs disk_only=true: libvirt freezes the guest file systems only for disk-only snapshots')
        if self.keep is not None:
            if self.state == REVERTED:
                fail('keep is used with state=present or state=absent, not with state=reverted')
            if self.state == S.ABSENT and self.name:
                fail('with state=absent give either name (delete one snapshot) or keep (retention), not both')
            minimum = 1 if self.state == PRESENT else 0
            if self.keep < minimum:
                fail('keep must be %d or more with state=%s, got %d' % (minimum, self.state, self.keep))
        if self.state == S.ABSENT and not self.name and self.keep is None:
            fail('state=absent needs name (the snapshot to delete) or keep (how many to keep)')
        if self.name_prefix is not None and self.keep is None and not (self.state == PRESENT and not self.name):
            fail('name_prefix is used with keep, or to name a new snapshot when name is not given')

    def fail(self, why):
        raise OperationFailed('Failed to %s: %s' % (self.what, why))

    @property
    def what(self):
        verb = {PRESENT: 'create snapshot', S.ABSENT: 'delete snapshot', REVERTED: 'revert to snapshot'}[self.state]
        target = ' %s' % self.name if self.name else 's' if self.state == S.ABSENT else ''
        return '%s%s of domain %s' % (verb, target, self.domain)


# Planning: pure functions of the declaration and what was observed ------------------

class Observed(collections.namedtuple('Observed', 'snapshots state live_xml libvirt_version is_local now')):
    """What the planners decide from: the domain's snapshot summaries (oldest
    first), its state (`_states` vocabulary), its live XML, the daemon's
    libvirt version, whether the hypervisor is this host (only then are its
    paths ours to look at) and the time."""

    def find(self, name):
        return next((s for s in self.snapshots if s['name'] == name), None)

    @property
    def current(self):
        return next((s['name'] for s in self.snapshots if s['current']), None)


# One step: `action` (one of the step names above) on the snapshot called
# `snapshot`, with libvirt's `flags` and, to create one, its XML.
Step = collections.namedtuple('Step', 'action snapshot flags xml')


class Plan(collections.namedtuple('Plan', 'steps diff deleted snapshot state facts')):
    """What a planner decided: the steps, the diff entries they produce, the
    snapshots they delete, the snapshot the task is about as it will be
    (None when there is none), the domain state a revert leaves (else None)
    and result fields known before anything runs."""

    def followed_by(self, other):
        """This plan, then the steps (and their diff and deletions) of `other`."""
        return self._replace(steps=self.steps + other.steps, diff=self.diff + other.diff,
                             deleted=self.deleted + other.deleted)


def _plan(steps=(), diff=(), deleted=(), snapshot=None, state=None, facts=None):
    return Plan(tuple(steps), tuple(diff), tuple(deleted), snapshot, state, facts or {})


def _header(domain, name):
    return 'snapshot %s of %s' % (name, domain)


def plan(spec, observed):
    """The Plan that brings the domain's snapshots to `spec`."""
    planner = {PRESENT: plan_present, S.ABSENT: plan_absent, REVERTED: plan_revert}[spec.state]
    return planner(spec, observed)


def plan_present(spec, observed):
    name = spec.name or generated_name(spec.name_prefix, observed.now)
    existing = observed.find(name)
    if existing is not None:
        made, snapshots = _plan(snapshot=existing), observed.snapshots
    else:
        made = plan_create(spec, observed, name)
        # It is the newest: libvirt stamps it with the current time.
        snapshots = observed.snapshots + [dict(made.snapshot, creation_time=int(observed.now))]
    if spec.keep is None:
        return made
    return made.followed_by(plan_retention(spec, observed, snapshots))


def plan_create(spec, observed, name):
    """Create snapshot `name` now, after the checks that would make libvirt refuse."""
    _preflight_create(spec, observed, name)
    state, memory = predicted_kind(observed.state, spec.disk_only)
    flags = 0
    if spec.disk_only:
        flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
    if spec.quiesce:
        flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE
    if spec.atomic:
        flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
    snapshot = dict(name=name, parent=observed.current, description=spec.description or None, creation_time=None,
                    state=state, memory=memory, disk_only=spec.disk_only, external=spec.disk_only,
                    disks=[dict(target=t, snapshot='external', file=f) for t, f in spec.disks],
                    current=True)
    xml = _xml.to_text(snapshot_xml(name, spec.description, spec.disks))
    return _plan(steps=[Step(CREATE, name, flags, xml)],
                 diff=[diff_entry(_header(spec.domain, name), '', describe_text(snapshot, spec.domain))],
                 snapshot=snapshot)


def _preflight_create(spec, observed, name):
    """What would make libvirt refuse, found before anything changes."""
    known = disk_targets(observed.live_xml)
    unknown = [target for target, _path in spec.disks if target not in known]
    if unknown:
        spec.fail('%s %s not a disk of the domain (its disks: %s)' % (
            ', '.join(unknown), 'is' if len(unknown) == 1 else 'are', ', '.join(known) or 'none'))
    selected = snapshot_disks(observed.live_xml)
    if not selected:
        # libvirt: "nothing selected for snapshot"
        spec.fail('the domain has no writable disk to snapshot (libvirt would refuse: nothing selected)')
    if spec.disk_only and observed.is_local:
        named = dict(spec.disks)
        for target, image in selected:
            overlay = named.get(target) or (default_overlay(image, name) if image else None)
            why = overlay_refusal(overlay) if overlay else None
            if why:
                spec.fail('the overlay of disk %s cannot be created: %s' % (target, why))
    if spec.quiesce:
        if observed.state != S.RUNNING:
            spec.fail('quiesce needs a running domain (with a connected guest agent); it is %s' % observed.state)
        connected, why = agent_connected(observed.live_xml)
        if not connected:
            spec.fail('quiesce needs the QEMU guest agent, and %s' % why)


def plan_retention(spec, observed, snapshots):
    """Delete the oldest of `snapshots` (those named with spec.name_prefix,
    when given) until spec.keep remain."""
    planned = _plan()
    for name in retention_victims(snapshots, spec.keep, spec.name_prefix):
        planned = planned.followed_by(plan_delete(spec, observed, observed.find(name), False, planned.deleted))
    return planned


def plan_delete(spec, observed, snapshot, children, deleted=()):
    """Delete `snapshot` (with its descendants when `children`), after the
    snapshots in `deleted`."""
    name = snapshot['name']
    if snapshot['external']:
        if observed.libvirt_version < EXTERNAL_DELETE_VERSION:
            spec.fail('%s is an external snapshot, and libvirt %s cannot delete external snapshots '
                      '(libvirt %s and later merge them back)' % (
                          name, version_text(observed.libvirt_version), version_text(EXTERNAL_DELETE_VERSION)))
        by_name = dict((s['name'], s) for s in observed.snapshots)
        parent = effective_parent(snapshot, by_name, deleted)
        if parent is not None and not by_name[parent]['external']:
            # libvirt 9.0: "deleting external snapshot that has internal
            # snapshot as parent not supported"
            spec.fail('%s is an external snapshot whose parent %s is internal, and libvirt cannot delete '
                      'such a snapshot (delete %s first, or both with state=absent and keep=0)'
                      % (name, parent, parent))
    removed = [name] + (descendants(observed.snapshots, name) if children else [])
    step = Step(DELETE_WITH_CHILDREN, name, libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN, None) if children \
        else Step(DELETE, name, 0, None)
    return _plan(steps=[step], deleted=removed,
                 diff=[diff_entry(_header(spec.domain, each), describe_text(observed.find(each), spec.domain), '')
                       for each in removed])


def plan_absent(spec, observed):
    if spec.keep is not None:
        return plan_retention(spec, observed, observed.snapshots)
    snapshot = observed.find(spec.name)
    if snapshot is None:
        return _plan()
    return plan_delete(spec, observed, snapshot, spec.children == DELETE_CHILDREN)._replace(snapshot=snapshot)


def plan_revert(spec, observed):
    snapshot = observed.find(spec.name)
    if snapshot is None:
        spec.fail('domain %s has no snapshot %s (its snapshots: %s)' % (
            spec.domain, spec.name, ', '.join(s['name'] for s in observed.snapshots) or 'none'))
    if snapshot['external'] and observed.libvirt_version < EXTERNAL_REVERT_VERSION:
        spec.fail('it is an external snapshot, and libvirt %s cannot revert to external snapshots '
                  '(supported from libvirt %s); nothing was changed' % (
                      version_text(observed.libvirt_version), version_text(EXTERNAL_REVERT_VERSION)))
    before = observed.state
    if before == S.SAVED:
        spec.fail('domain %s has a managed save image (its memory, saved by state=saved); a revert would '
                  'discard it. Start the domain (which restores that memory) or remove the image first; '
                  'nothing was changed' % spec.domain)
    actions, after = revert_steps(snapshot, spec.revert_state)
    flags = {REVERT_RUNNING: libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING,
             REVERT_PAUSED: libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED}
    steps = [Step(action, spec.name, flags.get(action, 0), None) for action in actions]
    diff = diff_entry('domain %s' % spec.domain,
                      [('state', before), ('current snapshot', observed.current or '(none)')],
                      [('state', after), ('current snapshot', spec.name)])
    facts = dict(
        previous_state=before, previous_snapshot=observed.current,
        discarded='The %s state of domain %s (disks%s, as they were before the revert) was replaced '
                  'by snapshot %s' % (before, spec.domain, ' and memory' if before in (S.RUNNING, S.PAUSED) else '',
                                      spec.name))
    return _plan(steps=steps, diff=[diff], snapshot=dict(snapshot, current=True), state=after, facts=facts)


# Talking to libvirt ------------------------------------------------------------------

def read_snapshots(client, domain):
    """Summaries of every snapshot of `domain`, and their libvirt objects by name."""
    what = 'list the snapshots of domain %s' % domain.name()
    objects = {}
    summaries = []
    for snapshot in client.call(what, domain.listAllSnapshots, 0):
        summary = summarize(client.call(what, snapshot.getXMLDesc, 0),
                            client.call(what, snapshot.isCurrent, 0))
        objects[summary['name']] = snapshot
        summaries.append(summary)
    return oldest_first(summaries), objects


def describe_snapshots(client, domain_name):
    """All snapshots of a domain as a list and as a tree, and the current one."""
    domain = client.require_domain(domain_name)
    snapshots, _objects = read_snapshots(client, domain)
    for snapshot in snapshots:
        snapshot['children'] = [s['name'] for s in snapshots if s['parent'] == snapshot['name']]
    current = next((s['name'] for s in snapshots if s['current']), None)
    return dict(changed=False, domain=domain_name, snapshots=snapshots, tree=tree(snapshots),
                current=current, count=len(snapshots))


def converge_snapshot(client, spec, check_mode):
    """Bring one snapshot (or a domain's set of snapshots) to `spec`; return the module result.
    The domain's lock keeps a domain or migrate run from changing it under us."""
    with client.exclusive('domain', spec.domain):
        return SnapshotConvergence(client, spec, Changes(check_mode)).run()


class SnapshotConvergence:
    """Observe, plan (`plan`), carry the steps out, report."""

    def __init__(self, client, spec, changes):
        self.client = client
        self.spec = spec
        self.changes = changes
        self.domain = None
        self.objects = {}  # libvirt's snapshot objects, by name

    def _observe(self):
        self.domain = self.client.require_domain(self.spec.domain)
        snapshots, self.objects = read_snapshots(self.client, self.domain)
        live_xml = self.client.call('read the XML of domain %s' % self.spec.domain, self.domain.XMLDesc, 0)
        return Observed(snapshots, self.client.observed_state(self.domain).state, live_xml,
                        self.client.libvirt_version, self.client.is_local, time.time())

    def run(self):
        spec, check_mode = self.spec, self.changes.check_mode
        planned = plan(spec, self._observe())
        result = dict(domain=spec.domain, actions=self.changes.actions, deleted=list(planned.deleted),
                      diff=list(planned.diff), **planned.facts)
        with self.changes.reporting(result):
            for step in planned.steps:
                self.changes.apply(step.action, self._perform, step)
        snapshot = planned.snapshot
        if not check_mode and snapshot is not None and spec.state != S.ABSENT:
            snapshots, _objects = read_snapshots(self.client, self.domain)
            snapshot = next((s for s in snapshots if s['name'] == snapshot['name']), snapshot)
        result['snapshot'] = snapshot
        if spec.state == REVERTED:
            result['state'] = planned.state if check_mode else self.client.observed_state(self.domain).state
        return result

    def _perform(self, step):
        domain, call = self.spec.domain, self.client.call
        if step.action == CREATE:
            call('create snapshot %s of domain %s' % (step.snapshot, domain), self.domain.snapshotCreateXML,
                 step.xml, step.flags)
        elif step.action in (DELETE, DELETE_WITH_CHILDREN):
            call('delete snapshot %s of domain %s' % (step.snapshot, domain), self.objects[step.snapshot].delete,
                 step.flags)
        elif step.action == STOP:
            call('stop domain %s' % domain, self.domain.destroy)
        else:
            call('revert domain %s to snapshot %s' % (domain, step.snapshot), self.domain.revertToSnapshot,
                 self.objects[step.snapshot], step.flags)
