# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one libvirt client every module uses, and the module base class.

* `LibvirtModule` adds the shared connection options, reports a missing
  libvirt-python or lxml with `missing_required_lib`, and turns an
  `OperationFailed` into one clear `msg` (no traceback).
* `LibvirtClient` wraps each libvirt call so that its error reads
  "Failed to <what>: <libvirt's message>".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

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
        self.uri = uri
        libvirt.registerErrorHandler(_ignore_libvirt_error, None)
        try:
            self.conn = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            raise OperationFailed('Failed to connect to %s: %s' % (uri, exc.get_error_message()))
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
