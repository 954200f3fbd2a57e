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

import re
import traceback
from urllib.parse import unquote

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import libvirt
    LIBVIRT_IMPORT_ERROR = None
except ImportError:
    libvirt = None
    LIBVIRT_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml

CONNECTION_ARGUMENT_SPEC = dict(
    uri=dict(type='str', default='qemu:///system'),
)

MASK = '********'

# scheme://userinfo@ - the password is what follows the first ':' of userinfo.
_USERINFO = re.compile(r'^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#]*)@')
# Query parameters whose value is a secret (password=, passwd=, pwd=, secret=, token=...).
_SECRET_PARAMETER = re.compile(r'pass|pwd|secret|token', re.IGNORECASE)


def _uri_parts(uri):
    """(password or None, [secret query values]) of a URI, as written."""
    password = None
    match = _USERINFO.match(uri)
    if match and ':' in match.group('userinfo'):
        password = match.group('userinfo').split(':', 1)[1]
    secrets = []
    query = uri.split('?', 1)[1].split('#', 1)[0] if '?' in uri else ''
    for parameter in re.split('[&;]', query):
        name, sep, value = parameter.partition('=')
        if sep and value and _SECRET_PARAMETER.search(name):
            secrets.append(value)
    return password, secrets


def mask_uri(uri):
    """`uri` with its password (user:password@, password=... and the like
    in the query) replaced by ********; everything else as written."""
    if not uri:
        return uri
    password, _secrets = _uri_parts(uri)
    if password is not None:
        match = _USERINFO.match(uri)
        user = match.group('userinfo').split(':', 1)[0]
        uri = '%s%s:%s@%s' % (match.group('head'), user, MASK, uri[match.end():])
    if '?' not in uri:
        return uri
    base, query = uri.split('?', 1)
    query, hash_sign, fragment = query.partition('#')
    parameters = re.split('([&;])', query)
    for index in range(0, len(parameters), 2):
        name, sep, value = parameters[index].partition('=')
        if sep and value and _SECRET_PARAMETER.search(name):
            parameters[index] = '%s=%s' % (name, MASK)
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

    def __init__(self, msg, libvirt_code=None, **result):
        super(OperationFailed, self).__init__(msg)
        self.libvirt_code = libvirt_code  # libvirt's error code, when libvirt failed
        self.result = result


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
        self._machine_aliases = None

    def call(self, what, operation, *args):
        """Run one libvirt call; its failure becomes OperationFailed."""
        try:
            return operation(*args)
        except libvirt.libvirtError as exc:
            raise OperationFailed('Failed to %s: %s' % (what, exc.get_error_message()), exc.get_error_code())

    def _lookup(self, what, not_found_code, operation, *args):
        """Run a lookup; None when libvirt says the object does not exist."""
        try:
            return operation(*args)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == not_found_code:
                return None
            raise OperationFailed('Failed to look up %s: %s' % (what, exc.get_error_message()))

    def domain(self, name):
        """The domain called `name`, or None when there is none."""
        return self._lookup('domain %s' % name, libvirt.VIR_ERR_NO_DOMAIN, self.conn.lookupByName, name)

    def pool(self, name):
        """The storage pool called `name`, or None when there is none."""
        return self._lookup('storage pool %s' % name, libvirt.VIR_ERR_NO_STORAGE_POOL,
                            self.conn.storagePoolLookupByName, name)

    def volume(self, pool, name):
        """The volume `name` of `pool` (a pool or its name), or None when either is missing."""
        if not isinstance(pool, libvirt.virStoragePool):
            pool = self.pool(pool)
            if pool is None:
                return None
        return self._lookup('volume %s in pool %s' % (name, pool.name()), libvirt.VIR_ERR_NO_STORAGE_VOL,
                            pool.storageVolLookupByName, name)

    def domains(self):
        return self.call('list domains', self.conn.listAllDomains, 0)

    def is_active(self, domain):
        """Whether `domain` runs; a transient domain that stopped is gone."""
        try:
            return bool(domain.isActive())
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise OperationFailed('Failed to read the state of %s: %s' % (domain.name(), exc.get_error_message()))

    @property
    def local_schemas_apply(self):
        """Whether the RelaxNG schemas installed here know everything the
        hypervisor's libvirt accepts (a newer remote libvirt may know more)."""
        return self.call('read the libvirt version', self.conn.getLibVersion) <= libvirt.getVersion()

    @property
    def machine_aliases(self):
        """Machine type aliases of this host (``pc`` -> ``pc-i440fx-7.2``)."""
        if self._machine_aliases is None:
            self._machine_aliases = _xml.machine_aliases(self.call('read host capabilities', self.conn.getCapabilities))
        return self._machine_aliases

    def close(self):
        try:
            self.conn.close()
        except libvirt.libvirtError:
            pass


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
        """Connect, call `converge(client)` and exit with its result.

        Errors the user can act on (OperationFailed, bad XML, impossible
        plans) end the task with their message and no traceback.
        """
        client = None
        try:
            client = LibvirtClient(self.params['uri'])
            result = converge(client)
        except OperationFailed as exc:
            self.fail_json(msg=str(exc), **exc.result)
        finally:
            if client is not None:
                client.close()
        self.exit_json(**result)
