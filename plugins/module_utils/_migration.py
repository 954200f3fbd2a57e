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
  and the path is looked up as a volume (`storageVolLookupByPath`), so a disk
  counts as present when a pool of the destination holds it.
* `migrate` runs the one mutation through `Changes.apply`; a watcher thread
  aborts the job when `timeout` is exceeded (the guest stays on the source)
  and switches to post-copy when asked to.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading

try:
    import libvirt
except ImportError:  # reported by LibvirtModule
    libvirt = None

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._changes import Changes
from ansible_collections.lifecycle.libvirt.plugins.module_utils._snapshot import read_snapshots
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import (
    LibvirtClient, OperationFailed)
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wait import Stopwatch

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
    def peer_uri(self):
        """The destination as the source host's daemon reaches it (p2p)."""
        return self.params['dest_peer_uri'] or self.dest_uri

    def _validate(self):
        p = self.params
        conflicts = (
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
    """The pre-migration checks, in order; each is (name, passed, detail)."""

    def __init__(self):
        self.results = []

    def add(self, name, passed, detail):
        self.results.append(dict(name=name, passed=bool(passed), detail=detail))

    @property
    def failed(self):
        return [check for check in self.results if not check['passed']]


def _version(number):
    return '%d.%d.%d' % (number // 1000000, number // 1000 % 1000, number % 1000)


def _check_versions(checks, source, dest):
    older = []
    for what, call in (('libvirt', 'getLibVersion'), ('hypervisor', 'getVersion')):
        mine = source.call('read the %s version of the source' % what, getattr(source.conn, call))
        theirs = dest.call('read the %s version of the destination' % what, getattr(dest.conn, call))
        if theirs < mine:
            older.append('%s %s < %s' % (what, _version(theirs), _version(mine)))
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
        result = dest.conn.compareHypervisorCPU(
            None, os_type.get('arch'), os_type.get('machine'), definition.get('type'), _xml.to_text(cpu), 0)
    except libvirt.libvirtError as exc:
        checks.add('cpu', False, 'cannot compare the CPU on the destination: %s' % exc.get_error_message())
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


def _refreshed_pools(dest):
    for pool in dest.call('list the storage pools of the destination', dest.conn.listAllStoragePools,
                          libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        try:
            pool.refresh(0)
        except libvirt.libvirtError:
            pass  # a pool that cannot refresh still answers with what it knew


def _found(lookup, key):
    """Whether a libvirt lookup (volume by path, pool by target path) finds `key`."""
    try:
        lookup(key)
        return True
    except libvirt.libvirtError:
        return False


def _check_disks(checks, dest, definition, copy_storage):
    paths = list(_disk_paths(definition))
    if not paths:
        checks.add('disks', True, 'no local disks')
        return
    _refreshed_pools(dest)
    if copy_storage != 'none':
        # libvirt creates the copy in the destination pool whose target is the
        # disk's directory, unless the volume is there already.
        missing = [path for path in paths
                   if not _found(dest.conn.storageVolLookupByPath, path)
                   and not _found(dest.conn.storagePoolLookupByTargetPath, path.rsplit('/', 1)[0] or '/')]
        checks.add('disks', not missing,
                   'no storage pool on the destination for: %s' % ', '.join(missing) if missing
                   else 'storage is copied; the destination has a pool for every disk')
        return
    missing = [path for path in paths if not _found(dest.conn.storageVolLookupByPath, path)]
    checks.add('disks', not missing,
               'not found in any storage pool of the destination: %s' % ', '.join(missing) if missing
               else 'every disk is in a storage pool of the destination: %s' % ', '.join(paths))


def _host_interfaces(dest):
    names = set()
    try:
        names.update(iface.name() for iface in dest.conn.listAllInterfaces(0))
    except libvirt.libvirtError:
        pass
    try:
        for device in dest.conn.listAllDevices(libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET):
            names.add(_xml.parse_xml(device.XMLDesc(0), 'node device XML').findtext('capability/interface'))
    except libvirt.libvirtError:
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
            try:
                if not dest.conn.networkLookupByName(name).isActive():
                    missing.append('network %s (inactive)' % name)
            except libvirt.libvirtError:
                missing.append('network %s' % name)
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
    try:
        other = dest.conn.lookupByUUIDString(uuid)
        clash.append('uuid %s (domain %s)' % (uuid, other.name()))
    except libvirt.libvirtError:
        pass
    checks.add('name_uuid_free', not clash, ('the destination has a domain with the same ' + ' and '.join(clash))
               if clash else 'no domain with this name or uuid on the destination')


def _check_memory(checks, dest, definition, offline):
    if offline:
        checks.add('free_memory', True, 'offline migration needs no memory')
        return
    needed = _xml.scaled_bytes(definition.find('currentMemory') if definition.find('currentMemory') is not None
                               else definition.find('memory'))
    free = dest.call('read the free memory of the destination', dest.conn.getFreeMemory)
    checks.add('free_memory', free >= needed, '%d MiB needed, %d MiB free on the destination' % (
        needed // 2 ** 20, free // 2 ** 20))


def run_checks(source, dest, domain, spec):
    """All pre-migration checks; `dest` is a LibvirtClient or the error reaching it."""
    checks = Checks()
    if isinstance(dest, OperationFailed):
        checks.add('destination_reachable', False, str(dest))
        return checks
    checks.add('destination_reachable', True, 'connected to %s (%s)' % (
        spec.dest_uri, dest.call('read the destination host name', dest.conn.getHostname)))
    kinds = [client.call('read the hypervisor type', client.conn.getType) for client in (source, dest)]
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
    _check_snapshots(checks, source, domain, spec)
    return checks


def _check_snapshots(checks, source, domain, spec):
    """libvirt refuses to migrate a domain with snapshots; their metadata
    can be carried along (snapshots=move) when their data travels with the
    disks, which copy_storage does not do for internal snapshots."""
    snapshots, _objects = read_snapshots(source, domain)
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


def _snapshot_metadata(client, domain):
    """(name, full XML, current) of every snapshot, parents before children:
    what is needed to redefine them on another host."""
    snapshots, objects = read_snapshots(client, domain)
    what = 'read the snapshots of %s' % domain.name()
    return [(snapshot['name'],
             client.call(what, objects[snapshot['name']].getXMLDesc, libvirt.VIR_DOMAIN_SNAPSHOT_XML_SECURE),
             snapshot['current'])
            for snapshot in snapshots]


def redefine_snapshots(client, domain, snapshots):
    for name, xml_text, current in snapshots:
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE
        if current:
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT
        client.call('redefine snapshot %s of %s' % (name, domain.name()), domain.snapshotCreateXML, xml_text, flags)


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
        return {}


def _do_migrate(source, dest, domain, spec):
    """Run the migration, carrying snapshot metadata along when asked: it is
    taken off the source first (libvirt refuses otherwise), redefined on the
    destination after, and put back on the source if the migration fails."""
    snapshots = _snapshot_metadata(source, domain) if spec.move_snapshots else []
    for name, _xml_text, _current in reversed(snapshots):
        source.call('detach snapshot %s of %s' % (name, spec.name), domain.snapshotLookupByName(name, 0).delete,
                    libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)
    try:
        stats = _migrate_job(source, dest, domain, spec)
    except OperationFailed:
        redefine_snapshots(source, domain, snapshots)
        raise
    if snapshots:
        redefine_snapshots(dest, dest.domain(spec.name), snapshots)
    return stats


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
    try:
        if spec.params['p2p']:
            domain.migrateToURI3(spec.peer_uri, spec.parameters, spec.flags)
            moved = dest.domain(spec.name)
        else:
            moved = domain.migrate3(dest.conn, spec.parameters, spec.flags)
    except libvirt.libvirtError as exc:
        why = exc.get_error_message()
        if watcher is not None and watcher.aborted:
            why = 'timed out after %d s, the migration job was aborted (%s)' % (spec.timeout, why)
        raise OperationFailed('Failed to migrate %s to %s: %s; %s' % (
            spec.name, spec.dest_uri, why, _aftermath(source, dest, spec)))
    finally:
        if watcher is not None:
            watcher.finished.set()
            watcher.join()
    stats = _completed_stats(moved)
    stats['postcopy_started'] = watcher is not None and watcher.in_postcopy
    return stats


def _aftermath(source, dest, spec):
    """Where the guest is after a failed migration, for the message."""
    _domain, on_source = _where(source, spec.name)
    try:
        _domain, on_dest = _where(dest, spec.name)
    except OperationFailed:
        on_dest = 'unknown'
    return 'the domain is %s on the source and %s on the destination' % (
        on_source or 'absent', on_dest or 'absent')


def _connect_destination(spec):
    try:
        return LibvirtClient(spec.dest_uri)
    except OperationFailed as exc:
        return exc


def _host(client):
    return client.call('read the host name', client.conn.getHostname)


def migrate(source, params, check_mode, diff_mode):
    """Move domain `params['name']` from `source` to `params['dest_uri']`."""
    watch = Stopwatch()
    spec = MigrationSpec(params)
    result = dict(changed=False, name=spec.name, source=source.uri, destination=spec.dest_uri,
                  flags=[name.lower() for name in spec.flag_names], checks=[], actions=[],
                  downtime_ms=None, bytes_transferred=None, postcopy_started=False, snapshots_moved=[])
    dest = _connect_destination(spec)
    try:
        domain, on_source = _where(source, spec.name)
        if isinstance(dest, OperationFailed):
            checks = run_checks(source, dest, domain, spec)
            raise OperationFailed('Failed to migrate %s: check destination_reachable failed: %s' % (
                spec.name, dest), checks=checks.results, source=source.uri, destination=spec.dest_uri,
                duration=watch.rounded())
        _dest_domain, on_dest = _where(dest, spec.name)
        decision = placement(on_source, on_dest, spec.offline)
        if decision in _PLACEMENT_ERRORS:
            raise OperationFailed('Failed to migrate: ' + _PLACEMENT_ERRORS[decision] % dict(
                name=spec.name, source=source.uri, dest=spec.dest_uri, dest_state=on_dest))
        if decision == 'done':
            result.update(state=on_dest, duration=watch.rounded())
            return result
        checks = run_checks(source, dest, domain, spec)
        result['checks'] = checks.results
        if checks.failed:
            first = checks.failed[0]
            raise OperationFailed('Failed to migrate %s: check %s failed: %s' % (
                spec.name, first['name'], first['detail']), checks=checks.results, source=source.uri,
                destination=spec.dest_uri, duration=watch.rounded())
        if spec.move_snapshots:
            result['snapshots_moved'] = [snapshot['name'] for snapshot in read_snapshots(source, domain)[0]]
        changes = Changes(check_mode)
        try:
            stats = changes.apply('migrate', _do_migrate, source, dest, domain, spec) or {}
        except OperationFailed as exc:
            exc.result.update(checks=checks.results, source=source.uri, destination=spec.dest_uri,
                              duration=watch.rounded())
            raise
        result.update(
            changed=changes.changed, actions=changes.actions, state=on_source,
            downtime_ms=stats.get('downtime'), bytes_transferred=stats.get('data_processed'),
            migration_ms=stats.get('time_elapsed'), postcopy_started=stats.get('postcopy_started', False))
        if diff_mode:
            result['diff'] = dict(
                before=dict(host=_host(source), uri=source.uri, state=on_source),
                after=dict(host=_host(dest), uri=spec.dest_uri, state=on_source,
                           persistent=bool(params['persistent'])))
        result['duration'] = watch.rounded()
        return result
    except _xml.XMLError as exc:
        raise OperationFailed('Failed to read the definition of %s: %s' % (spec.name, exc))
    finally:
        if not isinstance(dest, OperationFailed):
            dest.close()
