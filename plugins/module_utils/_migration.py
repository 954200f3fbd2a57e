# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving a domain from one libvirt host to another.

* `MigrationSpec` validates the options and computes libvirt's flags (pure).
* `placement` decides from where the domain is whether to move it, to do
  nothing, or to refuse (pure).
* `run_checks` answers, before anything moves and in check mode too, whether
  the destination can take the guest.  Paths on the destination are checked
  through libvirt only: the destination's active storage pools are refreshed
  and the path is looked up as a volume (`storageVolLookupByPath`).  A disk
  outside every pool of the destination cannot be seen, which is not the
  same as missing: it passes as unknown, with a warning.
* `migrate` runs the one mutation through `Changes.apply`, one run per domain
  at a time on this machine (the client's per-domain lock, which the domain
  module takes too), after waiting for a migration of the domain another run
  started.  The blocking libvirt call runs in a
  worker thread: SIGTERM/SIGINT abort the job (the guest stays on the
  source), as does a watcher thread when `timeout` is exceeded; it also
  switches to post-copy when asked to.
* `snapshots: move` keeps the snapshots' XML in the domain's own metadata
  while they are off the source (see "Snapshot metadata in transit"), so a
  killed run loses nothing and `plan_repair` lets the next run finish or
  undo the move.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading

from ansible.module_utils.common.warnings import warn

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _sizes, _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._changes import Changes, diff_entry
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import (
    LibvirtClient, OperationFailed, libvirt, mask_uri, version_text)
from ansible_collections.lifecycle.libvirt.plugins.module_utils._interrupt import (
    Interrupted, interruptible, pause_point, run_blocking, signal_name)
from ansible_collections.lifecycle.libvirt.plugins.module_utils._snapshot import (
    oldest_first, read_snapshots, summarize)
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wait import Stopwatch, WaitTimeout, wait_until

MIGRATE_ARGUMENT_SPEC = dict(
    name=dict(type='str', required=True),
    dest_uri=dict(type='str', required=True),
    dest_peer_uri=dict(type='str'),
    live=dict(type='bool'),
    offline=dict(type='bool', default=False),
    p2p=dict(type='bool', default=False),
    tunnelled=dict(type='bool', default=False),
    persistent=dict(type='bool', default=True),
    undefine_source=dict(type='bool', default=True),
    copy_storage=dict(type='str', default='none', choices=['none', 'all', 'incremental']),
    postcopy=dict(type='bool', default=False),
    auto_converge=dict(type='bool', default=False),
    compressed=dict(type='bool', default=False),
    bandwidth=dict(type='int'),
    max_downtime=dict(type='int'),
    migrate_uri=dict(type='str'),
    unsafe=dict(type='bool', default=False),
    timeout=dict(type='int'),
    snapshots=dict(type='str', default='refuse', choices=['refuse', 'move']),
)

# (option, flag name) for the options that map one-to-one on a flag.
_SIMPLE_FLAGS = (
    ('p2p', 'PEER2PEER'),
    ('tunnelled', 'TUNNELLED'),
    ('persistent', 'PERSIST_DEST'),
    ('undefine_source', 'UNDEFINE_SOURCE'),
    ('postcopy', 'POSTCOPY'),
    ('auto_converge', 'AUTO_CONVERGE'),
    ('compressed', 'COMPRESSED'),
    ('unsafe', 'UNSAFE'),
)
_COPY_STORAGE_FLAGS = {'none': None, 'all': 'NON_SHARED_DISK', 'incremental': 'NON_SHARED_INC'}

# Seconds between two looks of the watcher thread at the migration job.
_WATCH_INTERVAL = 0.2

# Steps (the `actions` a result lists).
MIGRATE = 'migrate'
FINISH_SNAPSHOT_MOVE = 'finish_snapshot_move'
UNDO_SNAPSHOT_MOVE = 'undo_snapshot_move'


class MigrationSpec:
    """The validated options; `flag_names` and `flags` are what libvirt gets."""

    def __init__(self, params):
        self.params = params
        self.name = params['name']
        self.dest_uri = params['dest_uri']
        self.offline = params['offline']
        self.live = (not self.offline) if params['live'] is None else params['live']
        self.copy_storage = params['copy_storage']
        self.timeout = params['timeout']
        self.move_snapshots = params['snapshots'] == 'move'
        self._validate()

    @property
    def shown_dest_uri(self):
        """The destination URI as messages and results show it (no password)."""
        return mask_uri(self.dest_uri)

    @property
    def peer_uri(self):
        """The destination as the source host's daemon reaches it (p2p)."""
        return self.params['dest_peer_uri'] or self.dest_uri

    def _validate(self):
        p = self.params
        conflicts = (
            # libvirt would take an empty URI as the default hypervisor of this machine.
            (not self.dest_uri.strip(), 'dest_uri is empty'),
            (self.offline and self.live, 'offline and live are mutually exclusive'),
            (self.offline and self.copy_storage != 'none', 'offline migration cannot copy storage'),
            (self.offline and p['postcopy'], 'offline migration cannot use postcopy'),
            (self.offline and not p['persistent'],
             'offline migration moves the definition, so it needs persistent=true'),
            (p['tunnelled'] and not p['p2p'], 'tunnelled requires p2p'),
            (p['tunnelled'] and p['migrate_uri'], 'tunnelled sends the data through libvirtd; migrate_uri cannot be set'),
            (p['dest_peer_uri'] and not p['p2p'], 'dest_peer_uri is only used with p2p'),
            (p['postcopy'] and not self.live, 'postcopy needs a live migration'),
        )
        for bad, why in conflicts:
            if bad:
                raise OperationFailed('Invalid options: %s' % why)
        for option in ('bandwidth', 'max_downtime', 'timeout'):
            if p[option] is not None and p[option] <= 0:
                raise OperationFailed('Invalid options: %s must be positive' % option)

    @property
    def flag_names(self):
        """libvirt's VIR_MIGRATE_* flags for these options, without the prefix."""
        names = []
        if self.offline:
            names.append('OFFLINE')
        elif self.live:
            names.append('LIVE')
        names.extend(flag for option, flag in _SIMPLE_FLAGS if self.params[option])
        if _COPY_STORAGE_FLAGS[self.copy_storage]:
            names.append(_COPY_STORAGE_FLAGS[self.copy_storage])
        return names

    @property
    def flags(self):
        value = 0
        for name in self.flag_names:
            value |= getattr(libvirt, 'VIR_MIGRATE_' + name)
        return value

    @property
    def parameters(self):
        """The typed parameters of migrate3 / migrateToURI3."""
        params = {}
        if self.params['migrate_uri']:
            params[libvirt.VIR_MIGRATE_PARAM_URI] = self.params['migrate_uri']
        if self.params['bandwidth']:
            params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = self.params['bandwidth']
        return params


def placement(on_source, on_destination, offline):
    """What to do, from where the domain is.

    `on_source` is None (no such domain), 'running' (active) or 'defined'
    (persistent and stopped); `on_destination` likewise.  Returns 'migrate',
    'done' (already in place) or the key of an error in _PLACEMENT_ERRORS.
    """
    if on_source == 'running' and on_destination is not None:
        return 'both'
    if on_source is None and on_destination is None:
        return 'neither'
    if on_source is None or (on_destination is not None and on_source == 'defined'):
        return 'done'
    if offline and on_source == 'running':
        return 'running-offline'
    if not offline and on_source == 'defined':
        return 'stopped-live'
    return 'migrate'


_PLACEMENT_ERRORS = {
    'both': 'domain %(name)s exists on both hosts: it runs on the source %(source)s and is %(dest_state)s '
            'on the destination %(dest)s',
    'neither': 'domain %(name)s exists neither on the source %(source)s nor on the destination %(dest)s',
    'running-offline': 'domain %(name)s is running on %(source)s; offline migration moves only a stopped domain',
    'stopped-live': 'domain %(name)s is not running on %(source)s; use offline=true to move its definition',
}


def _where(client, name):
    domain = client.domain(name)
    if domain is None:
        return None, None
    return domain, ('running' if client.is_active(domain) else 'defined')


# Checks ----------------------------------------------------------------------

class Checks:
    """The pre-migration checks, in order; each is (name, passed, detail).
    `warnings` are what a passed check could not verify."""

    def __init__(self):
        self.results = []
        self.warnings = []

    def add(self, name, passed, detail):
        self.results.append(dict(name=name, passed=bool(passed), detail=detail))

    @property
    def failed(self):
        return [check for check in self.results if not check['passed']]


def _check_versions(checks, source, dest):
    older = []
    for what, version in (('libvirt', lambda client: client.libvirt_version),
                          ('hypervisor', lambda client: client.hypervisor_version)):
        mine, theirs = version(source), version(dest)
        if theirs < mine:
            older.append('%s %s < %s' % (what, version_text(theirs), version_text(mine)))
    checks.add('versions', not older, '; '.join(older) or 'the destination is not older')


def _check_cpu(checks, dest, definition):
    cpu = definition.find('cpu')
    if cpu is None or cpu.get('mode') in ('host-passthrough', 'maximum'):
        if cpu is None:
            checks.add('cpu', True, 'no CPU model requested')
        else:
            checks.add('cpu', True, 'mode %s: the hosts must have the same CPU (not comparable)' % cpu.get('mode'))
        return
    os_type = definition.find('os/type')
    try:
        result = dest.compare_cpu(os_type.get('arch'), os_type.get('machine'), definition.get('type'),
                                  _xml.to_text(cpu))
    except OperationFailed as exc:
        checks.add('cpu', False, str(exc))
        return
    model = cpu.findtext('model') or cpu.get('mode')
    checks.add('cpu', result != libvirt.VIR_CPU_COMPARE_INCOMPATIBLE,
               'CPU %s %s on the destination' % (
                   model, 'is not runnable' if result == libvirt.VIR_CPU_COMPARE_INCOMPATIBLE else 'is runnable'))


def _disk_paths(definition):
    """Source paths of the writable local disks (cdroms and floppies excluded)."""
    for disk in definition.findall('devices/disk'):
        source = disk.find('source')
        if source is None or disk.get('type') not in ('file', 'block') or disk.get('device') not in (None, 'disk', 'lun'):
            continue
        path = source.get('file') or source.get('dev')
        if path:
            yield path


def _refresh_pools(dest):
    for pool in dest.pools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        try:
            dest.call('refresh storage pool %s' % pool.name(), pool.refresh, 0)
        except OperationFailed:
            pass  # a pool that cannot refresh still answers with what it knew


def _in_pool_directory(dest, path):
    """Whether the directory of `path` is the target of a storage pool of the destination."""
    try:
        return dest.pool_by_target_path(path.rsplit('/', 1)[0] or '/') is not None
    except OperationFailed as exc:
        if exc.libvirt_code == libvirt.VIR_ERR_NO_SUPPORT:
            return False  # a driver that cannot say: the disk is "unknown", with a warning
        raise


def _check_disks(checks, dest, definition, copy_storage):
    paths = list(_disk_paths(definition))
    if not paths:
        checks.add('disks', True, 'no local disks')
        return
    _refresh_pools(dest)
    in_pool = [path for path in paths if dest.volume_by_path(path) is not None]
    # A pool whose directory is the disk's: freshly refreshed, it lists every
    # file there, so a disk it does not hold is really missing.
    in_pool_dir = [path for path in paths if path not in in_pool and _in_pool_directory(dest, path)]
    if copy_storage != 'none':
        # libvirt creates the copy in that pool, unless the volume is there already.
        missing = [path for path in paths if path not in in_pool and path not in in_pool_dir]
        checks.add('disks', not missing,
                   'no storage pool on the destination for: %s' % ', '.join(missing) if missing
                   else 'storage is copied; the destination has a pool for every disk')
        return
    if in_pool_dir:
        checks.add('disks', False, 'missing on the destination (not in the storage pool of their directory): %s'
                   % ', '.join(in_pool_dir))
        return
    unknown = [path for path in paths if path not in in_pool]
    if not unknown:
        checks.add('disks', True, 'every disk is in a storage pool of the destination: %s' % ', '.join(paths))
        return
    # libvirt has no way to look at a file outside every pool of another host:
    # not seen is not missing, and the migration itself fails if it is.
    checks.add('disks', True, 'unknown, not in any storage pool of the destination: %s%s' % (
        ', '.join(unknown), ('; in a storage pool: %s' % ', '.join(in_pool)) if in_pool else ''))
    checks.warnings.append('the destination has no storage pool holding %s, so whether it is there cannot be '
                           'checked; define a pool for that directory on every host to have it checked'
                           % ', '.join(unknown))


def _host_interfaces(dest):
    """Names of the destination's host interfaces, from both of libvirt's
    views.  A daemon without one of the drivers lists nothing there: a bridge
    it does not list fails the check, it never passes unseen."""
    names = set()
    try:
        names.update(iface.name() for iface in dest.host_interfaces())
    except OperationFailed:
        pass
    try:
        for device in dest.network_devices():
            device_xml = dest.call('read node device %s' % device.name(), device.XMLDesc, 0)
            names.add(_xml.parse_xml(device_xml, 'node device XML').findtext('capability/interface'))
    except OperationFailed:
        pass
    return names


def _check_networks(checks, dest, definition):
    missing, used = [], []
    bridges = None
    for interface in definition.findall('devices/interface'):
        source = interface.find('source')
        kind = interface.get('type')
        if source is None or kind not in ('network', 'bridge', 'direct'):
            continue
        if kind == 'network':
            name = source.get('network')
            used.append('network ' + name)
            network = dest.network(name)
            if network is None:
                missing.append('network %s' % name)
            elif not dest.call('read network %s of the destination' % name, network.isActive):
                missing.append('network %s (inactive)' % name)
        else:
            name = source.get('bridge') if kind == 'bridge' else source.get('dev')
            used.append('%s %s' % (kind, name))
            if bridges is None:
                bridges = _host_interfaces(dest)
            if name not in bridges:
                missing.append('%s %s' % (kind, name))
    if not used:
        checks.add('networks', True, 'no network interfaces')
    else:
        checks.add('networks', not missing, ('missing on the destination: ' + ', '.join(missing)) if missing
                   else 'present on the destination: ' + ', '.join(used))


def _check_identity(checks, dest, name, uuid):
    clash = []
    if dest.domain(name) is not None:
        clash.append('name %s' % name)
    other = dest.domain_by_uuid(uuid)
    if other is not None:
        clash.append('uuid %s (domain %s)' % (uuid, other.name()))
    checks.add('name_uuid_free', not clash, ('the destination has a domain with the same ' + ' and '.join(clash))
               if clash else 'no domain with this name or uuid on the destination')


def _check_memory(checks, dest, definition, offline):
    if offline:
        checks.add('free_memory', True, 'offline migration needs no memory')
        return
    needed = _sizes.scaled_bytes(definition.find('currentMemory') if definition.find('currentMemory') is not None
                                 else definition.find('memory'))
    free = dest.free_memory()
    checks.add('free_memory', free >= needed, '%d MiB needed, %d MiB free on the destination' % (
        needed // 2 ** 20, free // 2 ** 20))


def run_checks(source, dest, domain, spec, snapshots):
    """All pre-migration checks; `dest` is a LibvirtClient or the error reaching it,
    `snapshots` the summaries of the domain's snapshots on the source."""
    checks = Checks()
    if isinstance(dest, OperationFailed):
        checks.add('destination_reachable', False, str(dest))
        return checks
    checks.add('destination_reachable', True, 'connected to %s (%s)' % (spec.shown_dest_uri, dest.host_name))
    kinds = [source.hypervisor_type, dest.hypervisor_type]
    checks.add('hypervisor_type', kinds[0] == kinds[1], 'source %s, destination %s' % tuple(kinds))
    _check_versions(checks, source, dest)
    flags = 0 if spec.offline else libvirt.VIR_DOMAIN_XML_MIGRATABLE
    definition = _xml.parse_xml(source.call('read the definition of %s' % spec.name, domain.XMLDesc, flags),
                                'domain XML')
    _check_cpu(checks, dest, definition)
    _check_disks(checks, dest, definition, spec.copy_storage)
    _check_networks(checks, dest, definition)
    _check_identity(checks, dest, spec.name, domain.UUIDString())
    _check_memory(checks, dest, definition, spec.offline)
    _check_snapshots(checks, snapshots, spec)
    return checks


def _check_snapshots(checks, snapshots, spec):
    """libvirt refuses to migrate a domain with snapshots; their metadata
    can be carried along (snapshots=move) when their data travels with the
    disks, which copy_storage does not do for internal snapshots."""
    if not snapshots:
        checks.add('snapshots', True, 'no snapshots')
        return
    names = ', '.join(snapshot['name'] for snapshot in snapshots)
    if not spec.move_snapshots:
        checks.add('snapshots', False, 'the domain has %d snapshots (%s), which libvirt cannot migrate; set '
                   'snapshots=move to carry their metadata to the destination' % (len(snapshots), names))
        return
    internal = [snapshot['name'] for snapshot in snapshots if not snapshot['external']]
    if internal and spec.copy_storage != 'none':
        checks.add('snapshots', False, 'internal snapshots (%s) live inside the disk images, and copy_storage '
                   'copies only their current state' % ', '.join(internal))
        return
    checks.add('snapshots', True, 'metadata of %d snapshots (%s) moves along' % (len(snapshots), names))


# Snapshot metadata in transit ---------------------------------------------------
#
# libvirt refuses to migrate a domain with snapshot metadata, so a move takes
# it off the source, migrates, and redefines it on the destination.  Before
# anything is taken off, the snapshots' XML is written into the domain's own
# <metadata> (a journal): it travels with the domain, survives a killed
# module (SIGKILL included) and a restarted daemon, and the next run - from
# any controller - finds it on whichever host has the domain and finishes
# the move there or undoes it on the source.

JOURNAL_NS = 'https://github.com/lifecycle-libvirt/lifecycle.libvirt/snapshots-in-transit'
_JOURNAL_KEY = 'lifecycle'


def _journal_xml(snapshots):
    # libvirt puts the element into JOURNAL_NS itself (setMetadata's key and uri).
    root = _xml.etree.Element('snapshots')
    for name, xml_text, current in snapshots:
        entry = _xml.etree.SubElement(root, 'snapshot', name=name, current='yes' if current else 'no')
        entry.text = xml_text
    return _xml.etree.tostring(root, encoding='unicode')


def journal_entries(text):
    """(name, XML, current) of each snapshot in a journal, parents first."""
    root = _xml.parse_xml(text, 'snapshot journal')
    return [(entry.get('name'), entry.text, entry.get('current') == 'yes')
            for entry in root if _xml.etree.QName(entry).localname == 'snapshot']


def _metadata_flags(client, domain):
    """The live and the persistent definition, whichever the domain has: both travel."""
    flags = 0
    if client.is_active(domain):
        flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    if client.call('read whether %s is persistent' % domain.name(), domain.isPersistent):
        flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
    return flags


def read_journal(client, domain):
    """The snapshots a half-done move left in `domain`'s metadata ([] if none)."""
    try:
        text = client.call('read the metadata of %s' % domain.name(), domain.metadata,
                           libvirt.VIR_DOMAIN_METADATA_ELEMENT, JOURNAL_NS, 0)
    except OperationFailed as exc:
        if exc.libvirt_code in (libvirt.VIR_ERR_NO_DOMAIN_METADATA, libvirt.VIR_ERR_NO_DOMAIN):
            return []
        raise
    return journal_entries(text)


def _write_journal(client, domain, snapshots):
    client.call('keep the snapshots of %s in its metadata' % domain.name(), domain.setMetadata,
                libvirt.VIR_DOMAIN_METADATA_ELEMENT, _journal_xml(snapshots), _JOURNAL_KEY, JOURNAL_NS,
                _metadata_flags(client, domain))


def _clear_journal(client, domain):
    client.call('remove the snapshot journal from the metadata of %s' % domain.name(), domain.setMetadata,
                libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, None, JOURNAL_NS, _metadata_flags(client, domain))


def _snapshot_metadata(client, domain):
    """(name, full XML, current) of every snapshot, parents before children:
    what is needed to redefine them on another host."""
    snapshots, objects = read_snapshots(client, domain)
    what = 'read the snapshots of %s' % domain.name()
    return [(snapshot['name'],
             client.call(what, objects[snapshot['name']].getXMLDesc, libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE),
             snapshot['current'])
            for snapshot in snapshots]


def restore_snapshots(client, domain, snapshots):
    """Redefine the snapshots `domain` does not have yet, then drop the journal:
    running it again after an interruption is harmless."""
    present = set(snapshot['name'] for snapshot in read_snapshots(client, domain)[0])
    for name, xml_text, current in snapshots:
        if name in present:
            continue
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
        if current:
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
        client.call('redefine snapshot %s of %s' % (name, domain.name()), domain.snapshotCreateXML, xml_text, flags)
    _clear_journal(client, domain)


def _detach_snapshots(client, domain, snapshots):
    for name, _xml_text, _current in reversed(snapshots):
        snapshot = client.call('look up snapshot %s of %s' % (name, domain.name()), domain.snapshotLookupByName,
                               name, 0)
        client.call('detach snapshot %s of %s' % (name, domain.name()), snapshot.delete,
                    libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)
        pause_point('snapshot-detached')


class Repair:
    """What the next run does about a move a killed run left half-done."""

    def __init__(self, action, detail, steps):
        self.action = action
        self.detail = detail
        self.steps = steps  # (client, domain, journal entries or None to only drop the journal)
        self.snapshots = next((entries for _c, _d, entries in steps if entries), [])

    def run(self):
        for client, domain, entries in self.steps:
            if entries is None:
                _clear_journal(client, domain)
            else:
                restore_snapshots(client, domain, entries)


def repair_direction(on_source, on_dest, journal_on_source, journal_on_dest):
    """Which way a half-done snapshot move goes (pure): 'finish' on the
    destination when the domain got there (a stopped definition left on the
    source does not count), 'undo' on the source when it did not, None when
    there is no journal (or the domain runs on both hosts: placement reports
    that).  `on_*` are None, 'running' or 'defined'."""
    if not journal_on_source and not journal_on_dest:
        return None
    if on_dest is not None and on_source != 'running':
        return 'finish'
    if on_dest is None and journal_on_source:
        return 'undo'
    return None


def plan_repair(source, dest, found_on_source, found_on_dest):
    """The Repair of a half-done snapshot move, or None; `found_on_*` are
    (domain, state) with state None when the host has no such domain."""
    (on_source_domain, on_source), (on_dest_domain, on_dest) = found_on_source, found_on_dest
    source_journal = read_journal(source, on_source_domain) if on_source_domain is not None else []
    dest_journal = read_journal(dest, on_dest_domain) if on_dest_domain is not None else []
    direction = repair_direction(on_source, on_dest, bool(source_journal), bool(dest_journal))
    if direction == 'finish':
        steps = []
        if dest_journal:
            steps.append((dest, on_dest_domain, dest_journal))
        if source_journal:
            steps.append((source, on_source_domain, None))
        return Repair(FINISH_SNAPSHOT_MOVE, 'the domain is on the destination: the snapshots of an interrupted '
                      'move are redefined there', steps)
    if direction == 'undo':
        return Repair(UNDO_SNAPSHOT_MOVE, 'the domain is still on the source: the snapshots of an interrupted '
                      'move are put back there', [(source, on_source_domain, source_journal)])
    return None


# The migration -----------------------------------------------------------------

class JobWatcher(threading.Thread):
    """Watches the migration job: aborts it after `timeout` seconds and, for
    post-copy, switches over once a first full pass did not converge."""

    def __init__(self, domain, timeout, postcopy):
        super(JobWatcher, self).__init__(name='migration-watcher')
        self.daemon = True
        self.domain = domain
        self.timeout = timeout
        self.postcopy = postcopy
        self.in_postcopy = False
        self.aborted = False
        self.finished = threading.Event()

    def run(self):
        watch = Stopwatch()
        while not self.finished.wait(_WATCH_INTERVAL):
            try:
                if self.postcopy and not self.in_postcopy:
                    stats = self.domain.jobStats(0)
                    if stats.get('memory_iteration', 0) >= 2:
                        self.domain.migrateStartPostCopy(0)
                        self.in_postcopy = True
                if self.timeout and watch.elapsed >= self.timeout and not self.in_postcopy:
                    # Post-copy cannot be aborted: the guest already runs on the destination.
                    self.domain.abortJob()
                    self.aborted = True
                    return
            except libvirt.libvirtError:
                pass  # the job ended between our look and our call


def _completed_stats(domain):
    if domain is None:
        return {}
    try:
        return domain.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    except libvirt.libvirtError:
        return {}  # the statistics only inform: the migration itself succeeded


def has_migration_job(domain, operation):
    """Whether `domain` (None: no domain) has a migration job of `operation`
    (VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT or _IN), whichever run started it."""
    if domain is None:
        return False
    try:
        stats = domain.jobStats(0)
    except libvirt.libvirtError:
        # It left (a finished migration undefined it) or its host does not
        # answer: no job to wait for; what happens next looks it up again.
        return False
    return (stats.get('type', libvirt.VIR_DOMAIN_JOB_NONE) != libvirt.VIR_DOMAIN_JOB_NONE
            and stats.get('operation') == operation)


def _wait_for_running_migration(spec, on_source, on_dest):
    """A migration of the domain is under way - another run's, or one whose
    module was killed while the daemons carry on or clean up: wait for it to
    end on both hosts, up to `timeout`.  Returns whether there was one."""
    def running():
        return (has_migration_job(on_source, libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT)
                or has_migration_job(on_dest, libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN))

    if not running():
        return False
    try:
        wait_until(lambda: not running(), spec.timeout or float('inf'),
                   'the end of the migration of %s already in progress' % spec.name, interval=0.5)
    except WaitTimeout as exc:
        raise OperationFailed('Failed to migrate %s: a migration of it started by another run is in progress and '
                              'did not end within %d s; run again to wait for it' % (spec.name, exc.elapsed))
    return True


def _do_migrate(source, dest, domain, spec):
    """Run the migration, carrying snapshot metadata along when asked (see the
    journal above).  SIGTERM/SIGINT abort the job and put the snapshots back."""
    with interruptible():
        snapshots = _snapshot_metadata(source, domain) if spec.move_snapshots else []
        try:
            if snapshots:
                _write_journal(source, domain, snapshots)
                _detach_snapshots(source, domain, snapshots)
            stats = _migrate_job(source, dest, domain, spec)
        except _StillRunning:
            raise  # the snapshots stay in the journal, for the domain's final host
        except Interrupted as exc:
            raise OperationFailed('Failed to migrate %s: interrupted by %s before the migration started%s' % (
                spec.name, signal_name(exc.signum), _put_back(source, domain, snapshots)))
        except OperationFailed as exc:
            raise OperationFailed('%s%s' % (exc, _put_back(source, domain, snapshots)))
        try:
            pause_point('migrated')
            if snapshots:
                moved = dest.domain(spec.name)
                restore_snapshots(dest, moved, snapshots)
                if not spec.params['undefine_source'] and source.domain(spec.name) is not None:
                    _clear_journal(source, domain)  # the definition left behind keeps no snapshots
        except OperationFailed as exc:
            raise OperationFailed('Failed to migrate %s: it runs on the destination %s, but its snapshots were '
                                  'not all redefined there (%s); they are kept in the domain\'s metadata and the '
                                  'next run finishes the move' % (spec.name, spec.shown_dest_uri, exc))
    if stats.pop('interrupted', None):
        warn('%s arrived when the migration of %s had already completed' % (stats.pop('signal'), spec.name))
    return stats


def _put_back(source, domain, snapshots):
    """After a failed migration: the snapshots back on the source, or why not."""
    if not snapshots:
        return ''
    try:
        restore_snapshots(source, domain, snapshots)
    except OperationFailed as exc:
        return ('; the snapshot metadata could not be put back on the source now (%s): it is kept in the '
                'domain\'s metadata and the next run puts it back' % exc)
    return '; its snapshots are back on the source'


def _migrate_call(dest, domain, spec):
    """The blocking libvirt call; returns the domain on the destination."""
    if spec.params['p2p']:
        domain.migrateToURI3(spec.peer_uri, spec.parameters, spec.flags)
        return dest.domain(spec.name)
    return dest.migrate_here(domain, spec.parameters, spec.flags)


def _migrate_job(source, dest, domain, spec):
    """Run the migration job; returns the completed job statistics and
    whether post-copy was started (`postcopy_started`)."""
    if spec.params['max_downtime']:
        source.call('set the maximum downtime of %s' % spec.name, domain.migrateSetMaxDowntime,
                    spec.params['max_downtime'], 0)
    watcher = None
    if spec.timeout or spec.params['postcopy']:
        watcher = JobWatcher(domain, spec.timeout, spec.params['postcopy'])
        watcher.start()
    interrupted = None
    try:
        moved = run_blocking(_migrate_call, dest, domain, spec, abort=domain.abortJob)
    except Interrupted as exc:
        interrupted = exc
        moved = _after_interruption(source, dest, spec, exc)
    except libvirt.libvirtError as exc:  # the migration's own error, said with what the watcher did
        why = exc.get_error_message()
        if watcher is not None and watcher.aborted:
            why = 'timed out after %d s, the migration job was aborted (%s)' % (spec.timeout, why)
        raise OperationFailed('Failed to migrate %s to %s: %s; %s' % (
            spec.name, spec.shown_dest_uri, why, _aftermath(source, dest, spec)))
    finally:
        if watcher is not None:
            watcher.finished.set()
            watcher.join()
    stats = _completed_stats(moved)
    stats['postcopy_started'] = watcher is not None and watcher.in_postcopy
    if interrupted is not None:
        stats.update(interrupted=True, signal=signal_name(interrupted.signum))
    return stats


class _StillRunning(OperationFailed):
    """The migration job could not be aborted: the move is left to the next run."""


def _after_interruption(source, dest, spec, exc):
    """SIGTERM/SIGINT during the migration: the job was told to abort.  Returns
    the moved domain when the migration completed anyway, else raises."""
    outcome = exc.outcome
    if not outcome.finished:
        raise _StillRunning(
            'Failed to migrate %s: interrupted by %s; the migration job could not be aborted (%s) and is still '
            'running - a run started now waits for it to end and finishes the move' % (
                spec.name, signal_name(exc.signum),
                exc.abort_error.get_error_message() if isinstance(exc.abort_error, libvirt.libvirtError)
                else 'post-copy cannot be aborted' if spec.params['postcopy'] else 'it did not stop in time'))
    if outcome.error is None:
        return outcome.value
    why = outcome.error.get_error_message() if isinstance(outcome.error, libvirt.libvirtError) else outcome.error
    raise OperationFailed('Failed to migrate %s to %s: interrupted by %s, the migration job was aborted (%s); %s' % (
        spec.name, spec.shown_dest_uri, signal_name(exc.signum), why, _aftermath(source, dest, spec)))


def _state_or_unknown(client, name):
    try:
        return _where(client, name)[1] or 'absent'
    except OperationFailed as exc:
        return 'unknown (%s)' % exc


def _aftermath(source, dest, spec):
    """Where the guest is after a failed migration, for the message; a host
    that does not answer (its daemon died) is reported as such, after the
    migration's own error."""
    return 'the domain is %s on the source and %s on the destination' % (
        _state_or_unknown(source, spec.name), _state_or_unknown(dest, spec.name))


def _connect_destination(spec):
    try:
        return LibvirtClient(spec.dest_uri)
    except OperationFailed as exc:
        return exc


def _source_snapshots(source, domain, repair):
    """The snapshots of the domain on the source, with those a pending undo
    puts back (so check mode predicts the real run)."""
    snapshots = read_snapshots(source, domain)[0]
    if repair is not None and repair.action == UNDO_SNAPSHOT_MOVE:
        present = set(snapshot['name'] for snapshot in snapshots)
        snapshots = oldest_first(snapshots + [summarize(xml_text, current) for name, xml_text, current
                                              in repair.snapshots if name not in present])
    return snapshots


def migrate(source, params, check_mode):
    """Move domain `params['name']` from `source` to `params['dest_uri']`."""
    spec = MigrationSpec(params)
    changes = Changes(check_mode)
    # What a failure reports too: the hosts, the checks run so far and a
    # repair done before it (a change).
    known = dict(source=source.uri, destination=spec.shown_dest_uri, checks=[], actions=changes.actions)
    dest = _connect_destination(spec)
    try:
        with source.exclusive('domain', spec.name), changes.reporting(known):
            outcome = _converge(source, dest, spec, known, changes)
    except _xml.XMLError as exc:
        raise OperationFailed('Failed to read the definition of %s: %s' % (spec.name, exc))
    finally:
        if not isinstance(dest, OperationFailed):
            dest.close()
    return dict(known, name=spec.name, flags=[name.lower() for name in spec.flag_names], **outcome)


def _converge(source, dest, spec, known, changes):
    """The result's fields other than `known`, which it fills in as it goes."""
    domain, on_source = _where(source, spec.name)
    if isinstance(dest, OperationFailed):
        known['checks'] = run_checks(source, dest, domain, spec, []).results
        raise OperationFailed('Failed to migrate %s: check destination_reachable failed: %s' % (spec.name, dest))
    if _wait_for_running_migration(spec, domain, dest.domain(spec.name)):
        domain, on_source = _where(source, spec.name)
    dest_domain, on_dest = _where(dest, spec.name)
    repair = plan_repair(source, dest, (domain, on_source), (dest_domain, on_dest))
    if repair is not None:
        changes.apply(repair.action, repair.run)
        known['repaired'] = repair.detail
    decision = placement(on_source, on_dest, spec.offline)
    if decision in _PLACEMENT_ERRORS:
        raise OperationFailed('Failed to migrate: ' + _PLACEMENT_ERRORS[decision] % dict(
            name=spec.name, source=known['source'], dest=spec.shown_dest_uri, dest_state=on_dest))
    unmoved = dict(downtime_ms=None, bytes_transferred=None, postcopy_started=False, snapshots_moved=[])
    if decision == 'done':
        return dict(unmoved, state=on_dest)
    snapshots = _source_snapshots(source, domain, repair)
    checks = run_checks(source, dest, domain, spec, snapshots)
    known['checks'] = checks.results
    if checks.failed:
        first = checks.failed[0]
        raise OperationFailed('Failed to migrate %s: check %s failed: %s' % (spec.name, first['name'], first['detail']))
    for warning in checks.warnings:
        warn(warning)
    stats = changes.apply(MIGRATE, _do_migrate, source, dest, domain, spec) or {}
    header = 'domain %s' % spec.name
    diff = diff_entry(header, [('host', source.host_name), ('uri', known['source']), ('state', on_source)],
                      [('host', dest.host_name), ('uri', known['destination']), ('state', on_source),
                       ('persistent', bool(spec.params['persistent']))])
    return dict(
        state=on_source, diff=diff, downtime_ms=stats.get('downtime'), bytes_transferred=stats.get('data_processed'),
        migration_ms=stats.get('time_elapsed'), postcopy_started=stats.get('postcopy_started', False),
        snapshots_moved=[snapshot['name'] for snapshot in snapshots] if spec.move_snapshots else [])
