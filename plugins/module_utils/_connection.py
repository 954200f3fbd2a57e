# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one libvirt client every module uses, and the module base class.

* `LibvirtModule` adds the shared connection options, reports a missing
  libvirt-python or lxml with `missing_required_lib`, and turns an
  `OperationFailed` into one clear `msg` (no traceback).
* `LibvirtClient` wraps each libvirt call so that its error reads
  "Failed to <what>: <libvirt's message>".
* `mask_uri` is the one function that hides a password in a libvirt URI;
  every message and result that shows a URI shows it through `mask_uri`
  (`LibvirtClient.uri` is already masked), and `LibvirtModule` hides the
  password of every URI option in all of the module's output and logs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import stat
import tempfile
import time
import traceback
from urllib.parse import unquote, urlsplit

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

try:
    import libvirt
    LIBVIRT_IMPORT_ERROR = None
except ImportError:
    libvirt = None
    LIBVIRT_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _states as S
from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wait import Stopwatch, WaitTimeout, wait_until

CONNECTION_ARGUMENT_SPEC = dict(
    uri=dict(type='str', default='qemu:///system', fallback=(env_fallback, ['LIBVIRT_DEFAULT_URI'])),
)

# libvirt errors that say "not now", not "no": another job holds the
# object's state change lock (libvirt already waited ~30 s for it).  The
# call had no effect, so repeating it is safe.
TRANSIENT_ERRORS = ('VIR_ERR_OPERATION_TIMEOUT',)
TRANSIENT_ATTEMPTS = 3
TRANSIENT_PAUSE_SECONDS = 2.0

# How long a run waits for another run converging the same object.
LOCK_WAIT_SECONDS = 1800

MASK = '********'

# scheme://userinfo@ - the password is what follows the first ':' of userinfo.
_USERINFO = re.compile(r'^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#]*)@')
# Query parameters whose value is a secret (password=, passwd=, pwd=, secret=, token=...).
_SECRET_PARAMETER = re.compile(r'pass|pwd|secret|token', re.IGNORECASE)


def _secret_value(parameter):
    """The value of a query parameter (name=value) when it is a secret."""
    name, sep, value = parameter.partition('=')
    return value if sep and value and _SECRET_PARAMETER.search(name) else None


def _uri_parts(uri):
    """(password or None, [secret query values]) of a URI, as written."""
    password = None
    match = _USERINFO.match(uri)
    if match and ':' in match.group('userinfo'):
        password = match.group('userinfo').split(':', 1)[1]
    query = uri.split('?', 1)[1].split('#', 1)[0] if '?' in uri else ''
    secrets = [_secret_value(parameter) for parameter in re.split('[&;]', query)]
    return password, [secret for secret in secrets if secret]


def mask_uri(uri):
    """`uri` with its password (user:password@, password=... and the like
    in the query) replaced by ********; everything else as written."""
    if not uri:
        return uri
    if _uri_parts(uri)[0] is not None:
        match = _USERINFO.match(uri)
        user = match.group('userinfo').split(':', 1)[0]
        uri = '%s%s:%s@%s' % (match.group('head'), user, MASK, uri[match.end():])
    if '?' not in uri:
        return uri
    base, query = uri.split('?', 1)
    query, hash_sign, fragment = query.partition('#')
    parameters = re.split('([&;])', query)
    for index in range(0, len(parameters), 2):  # the odd ones are the separators
        if _secret_value(parameters[index]):
            parameters[index] = '%s=%s' % (parameters[index].partition('=')[0], MASK)
    return '%s?%s%s%s' % (base, ''.join(parameters), hash_sign, fragment)


def uri_secrets(uri):
    """The secret strings of `uri`, as written and percent-decoded: what
    must appear in no output."""
    if not uri:
        return set()
    password, secrets = _uri_parts(uri)
    found = set(secrets + ([password] if password else []))
    return found | set(unquote(secret) for secret in found)


class OperationFailed(Exception):
    """A failure to report as the task's `msg`; `result` adds fields to it."""

    def __init__(self, msg, libvirt_code=None, libvirt_message=None, **result):
        super(OperationFailed, self).__init__(msg)
        self.libvirt_code = libvirt_code  # libvirt's error code, when libvirt failed
        self.libvirt_message = libvirt_message  # and its own words
        self.result = result


def version_text(number):
    """libvirt's version number (major * 1,000,000 + minor * 1,000 + release) as text."""
    return '%d.%d.%d' % (number // 1000000, number // 1000 % 1000, number % 1000)


def _ignore_libvirt_error(_context, _error):
    # libvirt prints every error to stderr by default; we report them ourselves.
    pass


class LibvirtClient:
    """One connection to one libvirt URI."""

    def __init__(self, uri):
        self.uri = mask_uri(uri)  # for messages and results; the password never leaves
        libvirt.registerErrorHandler(_ignore_libvirt_error, None)
        try:
            self.conn = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            raise OperationFailed('Failed to connect to %s: %s' % (self.uri, exc.get_error_message()))
        self._capabilities = None
        self._machine_aliases = None
        self._libvirt_version = None

    def call(self, what, operation, *args):
        """Run one libvirt call; its failure becomes OperationFailed.

        A transient refusal (see TRANSIENT_ERRORS) is retried a few times
        first: this is the one place that does it."""
        transient = set(getattr(libvirt, name) for name in TRANSIENT_ERRORS)
        for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
            try:
                return operation(*args)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() not in transient or attempt == TRANSIENT_ATTEMPTS:
                    raise OperationFailed('Failed to %s: %s' % (what, exc.get_error_message()), exc.get_error_code(),
                                          exc.get_error_message())
            time.sleep(TRANSIENT_PAUSE_SECONDS)

    def _lookup(self, what, not_found_code, operation, *args):
        """Run a lookup; None when libvirt says the object does not exist
        (its not-found code, and only that: a dropped connection or a
        denied access is an error, never "absent")."""
        try:
            return operation(*args)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == not_found_code:
                return None
            raise OperationFailed('Failed to look up %s: %s' % (what, exc.get_error_message()), exc.get_error_code())

    def _required(self, found, kind, name):
        if found is None:
            raise OperationFailed('Failed to find %s %s: no %s with that name at %s' % (kind, name, kind, self.uri))
        return found

    def domain(self, name):
        """The domain called `name`, or None when there is none."""
        return self._lookup('domain %s' % name, libvirt.VIR_ERR_NO_DOMAIN, self.conn.lookupByName, name)

    def pool(self, name):
        """The storage pool called `name`, or None when there is none."""
        return self._lookup('storage pool %s' % name, libvirt.VIR_ERR_NO_STORAGE_POOL,
                            self.conn.storagePoolLookupByName, name)

    def network(self, name):
        """The virtual network called `name`, or None when there is none."""
        return self._lookup('network %s' % name, libvirt.VIR_ERR_NO_NETWORK, self.conn.networkLookupByName, name)

    def volume(self, pool, name):
        """The volume `name` of `pool` (a pool or its name), or None when either is missing."""
        if not isinstance(pool, libvirt.virStoragePool):
            pool = self.pool(pool)
            if pool is None:
                return None
        return self._lookup('volume %s in pool %s' % (name, pool.name()), libvirt.VIR_ERR_NO_STORAGE_VOL,
                            pool.storageVolLookupByName, name)

    def volume_by_path(self, path):
        """The volume of some pool whose target is `path` (libvirt's lookup,
        which resolves the path as the pools see it), or None."""
        return self._lookup('the volume at %s' % path, libvirt.VIR_ERR_NO_STORAGE_VOL,
                            self.conn.storageVolLookupByPath, path)

    def define_pool(self, name, xml):
        """Define the storage pool `name` as `xml` declares it; returns it."""
        return self.call('define pool %s' % name, self.conn.storagePoolDefineXML, xml, 0)

    def new_stream(self, what):
        """A new libvirt stream, to attach to a volume's upload or download (`what`)."""
        return self.call('open a stream to %s' % what, self.conn.newStream, 0)

    def require_domain(self, name):
        """The domain called `name`; its absence is an error naming it."""
        return self._required(self.domain(name), 'domain', name)

    def require_pool(self, name):
        """The storage pool called `name`; its absence is an error naming it."""
        return self._required(self.pool(name), 'storage pool', name)

    def require_volume(self, pool, name):
        """The volume `name` of `pool` (a pool or its name); the absence of
        either is an error naming it."""
        if not isinstance(pool, libvirt.virStoragePool):
            pool = self.require_pool(pool)
        return self._required(self.volume(pool, name), 'volume', '%s in storage pool %s' % (name, pool.name()))

    def observed_state(self, domain, file_image=False):
        """The state of `domain` (or of no domain, None) in the collection's
        vocabulary, as `_states.observed_state` names it."""
        if domain is None:
            return S.observed_state(False, file_image=file_image)
        what = 'read the state of domain %s' % domain.name()
        state_code = self.call(what, domain.state)[0]
        persistent = bool(self.call(what, domain.isPersistent))
        managed_save = persistent and bool(self.call(what, domain.hasManagedSaveImage, 0))
        return S.observed_state(True, state_code, persistent, managed_save, file_image)

    @property
    def libvirt_version(self):
        """The version of the libvirt daemon (getLibVersion), read once."""
        if self._libvirt_version is None:
            self._libvirt_version = self.call('read the libvirt version', self.conn.getLibVersion)
        return self._libvirt_version

    def describe(self, kind, name, lookup, list_all, describe, gone_code):
        """[describe(object)] of the `kind` called `name` (`lookup(name)`, None
        when missing: an error naming it), or of every one `list_all()` gives,
        by name.  One that vanishes while they are read (a transient object
        that stopped; libvirt says `gone_code`) is left out of a listing."""
        if name is not None:
            return [describe(self._required(lookup(name), kind, name))]
        described = []
        for found in sorted(list_all(), key=lambda item: item.name()):
            try:
                described.append(describe(found))
            except OperationFailed as exc:
                if exc.libvirt_code != gone_code:
                    raise
        return described

    def domains(self):
        return self.call('list domains', self.conn.listAllDomains, 0)

    def define_domain(self, xml_text, name):
        """Define (or redefine) the persistent domain `name` from its XML.
        As `virsh define` does: libvirt's parser decides, not the schema
        (libvirt 9.0's schema refuses XML its parser accepts)."""
        return self.call('define domain %s' % name, self.conn.defineXML, xml_text)

    def create_domain(self, xml_text, flags, name):
        """Create the transient domain `name` from its XML, running (or
        paused, with VIR_DOMAIN_START_PAUSED)."""
        return self.call('create domain %s' % name, self.conn.createXML, xml_text, flags)

    def restore_domain(self, path, flags, name):
        """Restore the domain `name` from the save image `path`; the domain."""
        self.call('restore domain %s from %s' % (name, path), self.conn.restoreFlags, path, None, flags)
        return self.domain(name)

    def save_image_xml(self, path):
        """The domain XML inside the save image `path`, or None when libvirt
        says there is no such file."""
        try:
            return self.conn.saveImageGetXMLDesc(path, 0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_SYSTEM_ERROR and exc.get_int1() == errno.ENOENT:
                return None
            raise OperationFailed('Failed to read save image %s: %s' % (path, exc.get_error_message()),
                                  exc.get_error_code(), exc.get_error_message())

    def domain_capabilities(self, what, emulator=None, arch=None, machine=None, virt_type=None):
        """The domain capabilities XML of this host for that emulator, arch,
        machine and domain type (None: libvirt's default); `what` names the
        task it is read for in the error."""
        return self.call(what, self.conn.getDomainCapabilities, emulator, arch, machine, virt_type, 0)

    def is_active(self, domain):
        """Whether `domain` runs; a transient domain that stopped is gone."""
        try:
            return bool(domain.isActive())
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise OperationFailed('Failed to read the state of %s: %s' % (domain.name(), exc.get_error_message()))

    @property
    def is_local(self):
        """Whether the hypervisor is this host: libvirt's rule, a URI without
        a host name is served on this machine.  Only then are paths it
        reports paths of our own file system."""
        return urlsplit(self.call('read the connection URI', self.conn.getURI)).hostname is None

    @property
    def capabilities(self):
        if self._capabilities is None:
            self._capabilities = self.call('read host capabilities', self.conn.getCapabilities)
        return self._capabilities

    @property
    def machine_aliases(self):
        """Machine type aliases of this host (``pc`` -> ``pc-i440fx-7.2``)."""
        if self._machine_aliases is None:
            self._machine_aliases = _xml.machine_aliases(self.capabilities)
        return self._machine_aliases

    @contextlib.contextmanager
    def exclusive(self, kind, name, timeout=LOCK_WAIT_SECONDS):
        """Hold the lock of one object (`kind` `name` of this hypervisor)
        while converging it, so that two runs converging it at once take
        turns: the second observes what the first left, instead of racing
        it into libvirt's "cannot acquire state change lock" or "domain is
        already running".

        The lock is a flock(2) on a file of the host where the module runs,
        keyed by the hypervisor's host UUID (the same host whatever URI
        spells it) and the object's name; the kernel drops it when the
        process ends, however it ends.  It serializes the runs of this
        collection on this host only: runs from two controllers against one
        remote hypervisor, or virsh, are not serialized - for them the
        client retries transient errors and the convergence re-observes
        and re-plans when a step finds the object changed.
        """
        host = _xml.parse_xml(self.capabilities, 'host capabilities').findtext('host/uuid') or self.uri
        key = hashlib.sha256(('%s\0%s\0%s' % (host, kind, name)).encode('utf-8')).hexdigest()[:32]
        path = os.path.join(_lock_dir(), '%s-%s.lock' % (kind, key))
        try:
            handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise OperationFailed('Failed to lock %s %s (%s): %s' % (kind, name, path, exc.strerror))
        try:
            try:
                wait_until(lambda: _try_flock(handle), timeout, 'lock', interval=0.2)
            except WaitTimeout:
                raise OperationFailed('Failed to lock %s %s: another run has been converging it for more than %d s '
                                      '(lock file %s)' % (kind, name, timeout, path))
            yield
        finally:
            os.close(handle)  # releases the lock

    # The host and its objects, as migration, snapshots, networks and the
    # inventory read them: one libvirt call each, named for the message.

    @property
    def host_name(self):
        return self.call('read the host name of %s' % self.uri, self.conn.getHostname)

    @property
    def hypervisor_type(self):
        """libvirt's driver name of the hypervisor (QEMU, Xen...)."""
        return self.call('read the hypervisor type of %s' % self.uri, self.conn.getType)

    @property
    def hypervisor_version(self):
        """The hypervisor's version number, in libvirt_version's encoding."""
        return self.call('read the hypervisor version of %s' % self.uri, self.conn.getVersion)

    def free_memory(self):
        """Free memory of the host, in bytes."""
        return self.call('read the free memory of %s' % self.uri, self.conn.getFreeMemory)

    def compare_cpu(self, arch, machine, virt_type, cpu_xml):
        """How this hypervisor can run the <cpu> `cpu_xml` of a domain of type
        `virt_type` on `arch`/`machine`: a VIR_CPU_COMPARE_* value."""
        return self.call('compare the CPU on %s' % self.uri, self.conn.compareHypervisorCPU, None, arch, machine,
                         virt_type, cpu_xml, 0)

    def domain_by_uuid(self, uuid):
        """The domain with this UUID, or None when there is none."""
        return self._lookup('domain %s' % uuid, libvirt.VIR_ERR_NO_DOMAIN, self.conn.lookupByUUIDString, uuid)

    def pool_by_target_path(self, path):
        """The storage pool whose target directory is `path`, or None."""
        return self._lookup('the storage pool of %s' % path, libvirt.VIR_ERR_NO_STORAGE_POOL,
                            self.conn.storagePoolLookupByTargetPath, path)

    def pools(self, flags=0):
        return self.call('list the storage pools of %s' % self.uri, self.conn.listAllStoragePools, flags)

    def networks(self):
        return self.call('list networks', self.conn.listAllNetworks, 0)

    def define_network(self, xml_text, what):
        """Define (or redefine) a network from `xml_text`; an error reads
        "Failed to define <what>: <libvirt's message>"."""
        return self.call('define %s' % what, self.conn.networkDefineXML, xml_text)

    def host_interface(self, name):
        """The host interface `name` as libvirt's interface driver sees it, or None."""
        return self._lookup('host interface %s' % name, libvirt.VIR_ERR_NO_INTERFACE,
                            self.conn.interfaceLookupByName, name)

    def host_interfaces(self):
        return self.call('list the host interfaces of %s' % self.uri, self.conn.listAllInterfaces, 0)

    def network_devices(self):
        """The node devices that are network interfaces."""
        return self.call('list the network devices of %s' % self.uri, self.conn.listAllDevices,
                         libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_NET)

    def migrate_here(self, domain, parameters, flags):
        """Migrate `domain` (of another client) to this hypervisor
        (virDomainMigrate3); returns the domain here.  libvirt's error is
        raised as it is: the caller knows whether it aborted the job."""
        return domain.migrate3(self.conn, parameters, flags)

    def close(self):
        try:
            self.conn.close()
        except libvirt.libvirtError:
            pass


def _lock_dir():
    """A directory only this user can write: /run/lock/lifecycle.libvirt-<uid>
    (tmpfs, emptied at boot), or one under the temp directory."""
    base = '/run/lock' if os.path.isdir('/run/lock') else tempfile.gettempdir()
    path = os.path.join(base, 'lifecycle.libvirt-%d' % os.geteuid())
    try:
        os.mkdir(path, 0o700)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise OperationFailed('Failed to create the lock directory %s: %s' % (path, exc.strerror))
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise OperationFailed('Refusing the lock directory %s: it must be a directory of uid %d that only it '
                              'can use (mode 0700)' % (path, os.geteuid()))
    return path


def _try_flock(handle):
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (IOError, OSError) as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise


class LibvirtModule(AnsibleModule):
    """AnsibleModule with the connection options and the shared error path."""

    def __init__(self, argument_spec, **kwargs):
        spec = dict(CONNECTION_ARGUMENT_SPEC)
        spec.update(argument_spec)
        super(LibvirtModule, self).__init__(argument_spec=spec, **kwargs)
        if libvirt is None:
            self.fail_json(msg=missing_required_lib('libvirt-python'), exception=LIBVIRT_IMPORT_ERROR)
        if _xml.LXML_IMPORT_ERROR is not None:
            self.fail_json(msg=missing_required_lib('lxml'), exception=_xml.LXML_IMPORT_ERROR)

    def _log_invocation(self):
        """Hide the password of every URI option before anything is logged.

        AnsibleModule logs the arguments (syslog/journal) at the end of its
        __init__, through this method, and removes `no_log_values` from
        everything it logs and returns (`msg`, every result field, the
        `invocation` echo).  A URI is not `no_log` as a whole - it says which
        hypervisor was managed - so only its secrets are added here.
        """
        for option in self.argument_spec:
            if option == 'uri' or option.endswith('_uri'):
                self.no_log_values.update(uri_secrets(self.params.get(option)))
        super(LibvirtModule, self)._log_invocation()

    def add_path_info(self, kwargs):
        """Keep results as they are.  AnsibleModule would describe a file
        named by a returned `path` on the host where the module runs,
        overwriting `state`, `mode` and `size`; our `path` is a libvirt
        object's (a volume's or pool's) and the result already describes it."""
        return kwargs

    def run(self, converge):
        """Connect, call `converge(client)` and exit with its result (see
        `_finished`).

        Errors the user can act on (OperationFailed, bad XML, impossible
        plans) end the task with their message and no traceback.
        """
        watch = Stopwatch()
        client = None
        try:
            client = LibvirtClient(self.params['uri'])
            result = converge(client)
        except OperationFailed as exc:
            self.fail_json(msg=str(exc), **self._finished(exc.result, watch))
        finally:
            if client is not None:
                client.close()
        self.exit_json(**self._finished(result, watch))

    def _finished(self, result, watch):
        """What every module's result has in common: `duration` (the whole
        task, connection included), `diff` only under --diff, and the
        converger's `warnings` issued as the module's own."""
        result = dict(result, duration=watch.rounded())
        if not self._diff:
            result.pop('diff', None)
        # ansible-core 2.19 deprecates `warnings` handed to exit_json/fail_json.
        for warning in result.pop('warnings', None) or []:
            self.warn(warning)
        return result
