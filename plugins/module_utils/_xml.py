# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hardened XML parsing and the comparison of a declared domain XML with the
one libvirt holds.

libvirt fills in and rewrites a lot when it stores a definition (uuid, MAC
and PCI addresses, controllers, the serial port a console needs, memory in
KiB, the expanded machine type).  A plain string comparison therefore
reports changes that are not there.  The rules here come from libvirt itself
(docs/xml-comparison.md says how they were measured):

* `normalised_by_libvirt` runs the declared XML through libvirt's own parser
  (the in-process test driver) and reads back what libvirt makes of it;
* `reconcile` compares that with the stored definition: what the user wrote
  must match, in libvirt's spelling (sizes in bytes, NUMA memory summed,
  machine aliases canonical); what libvirt's parser added is libvirt's; a
  list the user wrote is complete, and a device kind neither written nor
  implied is removed, except those the QEMU driver always adds;
* the XML to define is the declared XML itself with only the identifiers
  libvirt generated (uuid, genid, MAC and device addresses) carried over,
  so a redefinition stores what `virsh define` of the user's XML stores and
  never churns them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os
import re
import threading

import traceback

try:
    from lxml import etree
    LXML_IMPORT_ERROR = None
except ImportError:  # reported by the module through missing_required_lib
    etree = None
    LXML_IMPORT_ERROR = traceback.format_exc()

try:
    import libvirt
except ImportError:  # reported by the module through missing_required_lib
    libvirt = None

from ansible_collections.lifecycle.libvirt.plugins.module_utils._sizes import scaled_bytes, unit_bytes


class XMLError(ValueError):
    """The XML the user gave is not acceptable; the message says why."""


def _parser():
    # No entity expansion, no DTD loading, no network access and the default
    # depth/size limits of libxml2 (huge_tree off): nothing in a document can
    # make us read files, reach hosts or exhaust memory.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        remove_blank_text=True,
    )


def parse_xml(text, what='XML'):
    """Parse `text` with the hardened parser; raise XMLError with a clear reason."""
    if text is None or not text.strip():
        raise XMLError('%s is empty' % what)
    data = text.encode('utf-8') if not isinstance(text, bytes) else text
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise XMLError('%s is not well-formed: %s' % (what, exc))
    if root.getroottree().docinfo.doctype:
        # libvirt documents never carry a DOCTYPE; refusing it outright is the
        # simplest way to be sure no entity (XXE) is ever declared or used.
        raise XMLError('%s must not contain a DOCTYPE (entities are not allowed)' % what)
    return root


def to_text(element):
    """Pretty, stable serialisation used for diffs and for defining."""
    return etree.tostring(element, pretty_print=True, encoding='unicode')


def masked_text(element):
    """Like to_text, with secrets (VNC/SPICE passwords) replaced for display."""
    shown = copy.deepcopy(element)
    for node in shown.iter():
        for attribute in SECRET_ATTRIBUTES:
            if attribute in node.attrib:
                node.set(attribute, _MASK)
    return to_text(shown)


def _memory_libvirt_stores(domain):
    """The <memory> libvirt's QEMU driver stores for `domain` when it has
    NUMA cells: the sum of the cells plus the memory devices (DIMMs),
    whatever <memory> says; None without cells."""
    cells = [unit_bytes(cell.get('memory'), cell.get('unit')) for cell in domain.iterfind('cpu/numa/cell')]
    if not cells or None in cells:
        return None
    devices = [scaled_bytes(size) for size in domain.iterfind('devices/memory/target/size')]
    return sum(cells) + sum(size for size in devices if size is not None)


# Reconciliation --------------------------------------------------------------

# How two elements of the same kind are recognised as "the same one": the
# (path, attribute) pairs that identify it.  Only the fields the user wrote
# are compared; without any, elements pair by position.  USB controllers
# share type and index (an EHCI controller and its UHCI companions), so the
# model tells them apart.
_IDENTITY_FIELDS = {
    'disk': (('target', 'dev'),),
    'interface': (('mac', 'address'),),
    'controller': (('.', 'type'), ('.', 'index'), ('.', 'model')),
    'input': (('.', 'type'), ('.', 'bus')),
    'graphics': (('.', 'type'),),
    'filesystem': (('target', 'dir'),),
    'serial': (('target', 'port'),),
    'console': (('target', 'type'), ('target', 'port')),
    'channel': (('target', 'type'), ('target', 'name')),
    'hostdev': (('source/address', 'bus'), ('source/address', 'slot'), ('source/address', 'function')),
    'cell': (('.', 'id'),),
    'iothread': (('.', 'id'),),
    'timer': (('.', 'name'),),
    'feature': (('.', 'name'),),
}

# Device kinds the QEMU driver adds on its own (beyond what libvirt's generic
# parser implies, which the normalised document shows); a declaration that
# does not mention them must not read as "remove them".
_SELF_ADDED_DEVICES = frozenset(('emulator', 'controller', 'memballoon', 'audio'))

# What libvirt generates for a definition and we carry over on a
# redefinition, so that it never churns: the uuid and generation id, MAC
# addresses and device addresses.
_GENERATED_TOP_LEVEL = ('uuid', 'genid')

# A device address stays valid only while the bus it sits on stays the same.
_ADDRESS_BUS_FIELDS = {
    'disk': (('target', 'bus'),),
    'controller': (('.', 'type'), ('.', 'model')),
}

# Attributes whose values are secrets: compared, never shown.
SECRET_ATTRIBUTES = ('passwd',)
_MASK = '********'

# The libvirt driver whose generic parser normalises a declared document
# in-process: nothing on any host is touched.
NORMALISING_URI = 'test:///default'


class Reconciliation:
    """Outcome of comparing a declared XML with libvirt's: `differences` (a
    list of readable strings) and `merged` (the element to define: the
    declared one with libvirt's generated identifiers carried over)."""

    def __init__(self, merged, differences):
        self.merged = merged
        self.differences = differences

    @property
    def changed(self):
        return bool(self.differences)


def normalised_by_libvirt(declared, client):
    """`declared` as libvirt's own parser stores it: generic defaults filled
    in, implied devices added (the serial port a console needs, controllers,
    the video card of a graphical console), values in libvirt's spelling
    (memory in KiB and summed over NUMA cells, ids numbered, CPU sets
    canonical, children libvirt ignores dropped).  `client` is a
    LibvirtClient of NORMALISING_URI; the document is defined there under a
    scratch name, read back and undefined.  Raises XMLError when libvirt's
    parser refuses the XML itself; None when only this driver cannot hold it
    (the declared XML is then compared as written)."""
    # _connection imports this module: its error class is imported here.
    from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed
    scratch = copy.deepcopy(declared)
    name = scratch.find('name')
    # Every connection of the process shares the test driver's state: the
    # name is this thread's own (a batch normalises in several at once).
    name.text = 'lifecycle-libvirt-normalise-%d-%d' % (os.getpid(), threading.get_ident())
    try:
        domain = client.define_domain(to_text(scratch), name.text)
    except OperationFailed as exc:
        if exc.libvirt_code in (libvirt.VIR_ERR_XML_ERROR, libvirt.VIR_ERR_XML_DETAIL):
            raise XMLError('libvirt does not accept the XML: %s' % exc.libvirt_message)
        return None  # what this driver lacks (an architecture, a device kind) is for the real one to say
    try:
        normalised = parse_xml(client.call('read the normalised XML', domain.XMLDesc,
                                           libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE),
                               'normalised XML')
    finally:
        client.call('undefine the normalised XML', domain.undefine)
    normalised.find('name').text = declared.find('name').text
    return normalised


def reconcile(declared, actual, machine_aliases=None, normalised=None):
    """Compare the declared domain element with libvirt's (`actual`).

    `normalised` is `declared` as libvirt's parser stores it
    (normalised_by_libvirt); what it adds to `declared` is libvirt's default
    and is not compared, the values the user wrote are compared in libvirt's
    spelling.  The element to define is `declared` itself with the uuid,
    MAC and device addresses libvirt generated: a redefinition stores exactly
    what libvirt makes of the user's XML."""
    declared = _without_generated_interface_names(declared)
    written = _written(declared, normalised if normalised is not None else declared)
    comparison = _Comparison(machine_aliases or {}, written)
    comparison.element(normalised if normalised is not None else declared, actual, '/' + declared.tag)
    merged = _with_generated_identifiers(declared, actual, comparison.pairs)
    return Reconciliation(merged, comparison.differences)


# Host interface names libvirt generates (vnetN, macvtapN, macvlanN): it
# drops them from a definition, so they are not the user's.
_GENERATED_INTERFACE_NAME = re.compile(r'^(vnet|macvtap|macvlan)[0-9]+$')


def _without_generated_interface_names(declared):
    if not any(_GENERATED_INTERFACE_NAME.match(target.get('dev') or '')
               for target in declared.iterfind('devices/interface/target')):
        return declared
    declared = copy.deepcopy(declared)
    for target in declared.iterfind('devices/interface/target'):
        if _GENERATED_INTERFACE_NAME.match(target.get('dev') or ''):
            target.getparent().remove(target)
    return declared


def attribute_of(element, path, attribute):
    """`attribute` of the child at `path` ('.' for the element), or None."""
    node = element if path == '.' else element.find(path)
    return None if node is None else node.get(attribute)


def _identity(element, fields):
    return tuple((path, attribute, attribute_of(element, path, attribute)) for path, attribute in fields)


def _describe(element):
    """A short, readable name for an element in a difference message."""
    fields = _IDENTITY_FIELDS.get(element.tag, ())
    label = ','.join('%s' % value for _p, _a, value in _identity(element, fields) if value is not None)
    return '%s[%s]' % (element.tag, label) if label else element.tag


def _shown(name, value):
    return _MASK if name in SECRET_ATTRIBUTES and value is not None else value


def _pair(children, others, identity_of):
    """Pair each of `children` with one of `others` of the same tag: by the
    identity fields `identity_of(child)` gives, else by order."""
    unpaired = list(others)
    pairs = []
    for child in children:
        wanted = identity_of(child)
        if wanted:
            match = next((o for o in unpaired if o.tag == child.tag
                          and all(attribute_of(o, p, a) == v for p, a, v in wanted)), None)
            if match is not None:
                unpaired.remove(match)
        else:
            match = None
        pairs.append([child, match, bool(wanted)])
    for pair in pairs:
        if not pair[2]:
            pair[1] = next((o for o in unpaired if o.tag == pair[0].tag), None)
            if pair[1] is not None:
                unpaired.remove(pair[1])
    return [(child, match) for child, match, _by_identity in pairs]


def _written_identity(element):
    fields = _IDENTITY_FIELDS.get(element.tag, ())
    return [(p, a, v) for p, a, v in _identity(element, fields) if v is not None]


def _written(declared, normalised):
    """Map each element of `normalised` that the user wrote to the declared
    element; elements missing from the map are libvirt's.  (Elements are the
    keys: that keeps lxml's proxies alive, so their identity holds.)"""
    written = {normalised: declared}
    for child, match in _pair(list(declared), list(normalised), _written_identity):
        if match is not None:
            written.update(_written(child, match))
    return written


class _Comparison:
    """Walk the normalised declaration and libvirt's XML together; note the
    differences in what the user wrote and remember which elements pair."""

    def __init__(self, machine_aliases, written):
        self.machine_aliases = machine_aliases
        self.written = written
        self.differences = []
        self.pairs = {}  # declared element -> libvirt's element

    def note(self, message):
        self.differences.append(message)

    def _attribute_equal(self, name, declared, actual):
        if declared == actual:
            return True
        if name == 'machine':
            return self.machine_aliases.get(declared, declared) == self.machine_aliases.get(actual, actual)
        return False

    def element(self, normalised, actual, path):
        declared = self.written.get(normalised)
        if declared is None:
            return  # libvirt's own element: its values are libvirt's defaults
        self.pairs[declared] = actual
        self._value(normalised, declared, actual, path)
        for name in declared.attrib:
            if name == 'unit' or name not in normalised.attrib:
                continue  # a unit is part of a size; an attribute libvirt drops is not stored
            value, actual_value = normalised.get(name), actual.get(name)
            if actual_value is None or not self._attribute_equal(name, value, actual_value):
                self.note('%s/@%s: %r -> %r' % (path, name, _shown(name, actual_value), _shown(name, value)))
        self._children(normalised, declared, actual, path)

    def _value(self, normalised, declared, actual, path):
        if not (declared.text or '').strip():
            return  # an element the user left empty takes libvirt's value
        size, actual_size = scaled_bytes(normalised), scaled_bytes(actual)
        if path == '/domain/memory':
            size = _memory_libvirt_stores(normalised.getparent()) or size
        if size is not None and actual_size is not None:
            if size != actual_size:
                self.note('%s: %s -> %s bytes' % (path, actual_size, size))
            return
        text, actual_text = (normalised.text or '').strip(), (actual.text or '').strip()
        if text != actual_text:
            self.note('%s: %r -> %r' % (path, actual_text, text))

    def _identity_of(self, normalised):
        declared = self.written.get(normalised)
        if declared is None:
            return [(p, a, v) for p, a, v in _identity(normalised, _IDENTITY_FIELDS.get(normalised.tag, ()))
                    if v is not None]
        # Only what the user wrote identifies an element (a MAC libvirt's
        # parser generated for the normalised copy is not the stored one).
        return [(p, a, attribute_of(normalised, p, a)) for p, a, _v in _written_identity(declared)
                if attribute_of(normalised, p, a) is not None]

    def _children(self, normalised, declared, actual, path):
        pairs = _pair(list(normalised), list(actual), self._identity_of)
        paired_actual = set(a for _n, a in pairs if a is not None)
        declared_kinds = set(child.tag for child in declared)
        normalised_kinds = set(child.tag for child in normalised)
        for child, match in pairs:
            child_declared = self.written.get(child)
            if match is not None:
                described = _describe(child if child_declared is None else child_declared)
                self.element(child, match, '%s/%s' % (path, described))
            elif child_declared is not None:
                self.note('%s/%s: added' % (path, _describe(child_declared)))
        for child in actual:
            if child not in paired_actual and not self._libvirts(child, actual, declared_kinds, normalised_kinds):
                self.note('%s/%s: removed' % (path, _describe(child)))

    @staticmethod
    def _libvirts(child, parent, declared_kinds, normalised_kinds):
        """Whether an element only libvirt's XML has is libvirt's to keep:
        a kind of element the user did not write at all (outside <devices>),
        a device kind libvirt implies from what the user wrote, or one the
        QEMU driver adds on its own."""
        if parent.tag == 'devices' and (child.tag in _SELF_ADDED_DEVICES
                                        or (child.tag == 'input' and child.get('bus') == 'ps2')):
            return True
        if child.tag in declared_kinds:
            return False  # a kind the user wrote is a complete list
        return parent.tag != 'devices' or child.tag in normalised_kinds


def _keep_generated_interface_identity(interface, stored):
    """The MAC address and Open vSwitch port id libvirt generated."""
    if interface.find('mac') is None and stored.find('mac') is not None:
        interface.insert(0, copy.deepcopy(stored.find('mac')))
    parameters = interface.find('virtualport/parameters')
    stored_id = attribute_of(stored, 'virtualport/parameters', 'interfaceid')
    if stored_id is not None and interface.find('virtualport') is not None:
        if parameters is None:
            parameters = etree.SubElement(interface.find('virtualport'), 'parameters')
        if parameters.get('interfaceid') is None:
            parameters.set('interfaceid', stored_id)


def _with_generated_identifiers(declared, actual, pairs):
    """`declared` with the identifiers libvirt generated for it (uuid, genid,
    MAC addresses, device addresses) taken from `actual` where the user left
    them out, so that a redefinition keeps them."""
    merged = copy.deepcopy(declared)
    originals = dict(zip(declared.iter(), merged.iter()))
    name = merged.find('name')
    for tag in reversed(_GENERATED_TOP_LEVEL):
        kept = actual.find(tag)
        mine = merged.find(tag)
        if kept is not None and (mine is None or not (mine.text or '').strip()):
            if mine is not None:
                merged.remove(mine)
            name.addnext(copy.deepcopy(kept))
    devices = declared.find('devices')
    for device in devices if devices is not None else []:
        stored = pairs.get(device)
        if stored is None:
            continue
        copied = originals[device]
        if device.tag == 'interface':
            _keep_generated_interface_identity(copied, stored)
        address = stored.find('address')
        if device.find('address') is None and address is not None and all(
                attribute_of(device, p, a) in (None, attribute_of(stored, p, a))
                for p, a in _ADDRESS_BUS_FIELDS.get(device.tag, ())):
            copied.append(copy.deepcopy(address))
    return merged


def without_runtime_state(domain):
    """The definition in a live dump (`virsh dumpxml` of a running domain,
    recognisable by its id= attribute), without what only describes the
    running QEMU process: ids, device aliases, pty paths, detected backing
    chains, block job mirrors, sockets libvirt made for this process, the
    guest agent's connection state, the default resource partition, dynamic
    security labelling, automatic ports and the CPU as libvirt expanded it.
    (Host interface names libvirt generates are left out of any declaration
    by `reconcile`.)
    Any other document is returned as it is."""
    if domain.get('id') is None:
        return domain
    domain = copy.deepcopy(domain)
    removed = []
    removed += [a for a in domain.iter('alias') if not (a.get('name') or '').startswith('ua-')]
    removed += domain.findall('devices/disk/backingStore') + domain.findall('devices/disk/mirror')
    removed += [r for r in domain.findall('resource') if r.findtext('partition') == '/machine']
    removed += [seclabel for seclabel in domain.findall('seclabel') if seclabel.get('type') == 'dynamic']
    removed += domain.findall('cpu')  # libvirt's expansion of the model, not the user's choice
    # The directory libvirt makes for this QEMU process (domain-<id>-<name>),
    # where it puts the sockets it fills in for unix channels and the like.
    process_directory = '/domain-%s-' % domain.get('id')
    for chardev in domain.find('devices') if domain.find('devices') is not None else []:
        if chardev.tag in ('serial', 'console', 'parallel', 'channel') and chardev.get('type') == 'pty':
            chardev.attrib.pop('tty', None)
            removed += [source for source in chardev.findall('source') if source.get('path')]
        removed += [source for source in chardev.iter('source') if source.get('mode') == 'bind'
                    and process_directory in (source.get('path') or '')]
        for target in chardev.iterfind('target'):
            target.attrib.pop('state', None)  # whether the guest agent is connected now
    for element in removed:
        element.getparent().remove(element)
    del domain.attrib['id']
    for source in domain.findall('devices/disk/source'):
        source.attrib.pop('index', None)
    for graphics in domain.findall('devices/graphics'):
        if graphics.get('autoport') == 'yes':
            for port in ('port', 'tlsPort', 'websocket'):
                graphics.attrib.pop(port, None)
    return domain


def machine_aliases(capabilities_xml):
    """Map machine aliases (``pc``, ``q35``) to their canonical names from
    the host's capabilities XML."""
    aliases = {}
    root = parse_xml(capabilities_xml, 'capabilities XML')
    for machine in root.iter('machine'):
        canonical = machine.get('canonical')
        if canonical and machine.text:
            aliases[machine.text.strip()] = canonical
    return aliases


# Declarations ------------------------------------------------------------------

def parse_declaration(text, kind):
    """Parse the XML a user declared for a libvirt object of `kind`
    (``domain``, ``network``): hardened, with `kind` as its root element."""
    try:
        root = parse_xml(text, 'xml')
    except XMLError as exc:
        raise XMLError('Invalid %s XML: %s' % (kind, exc))
    if root.tag != kind:
        raise XMLError('Invalid %s XML: the root element is <%s>, expected <%s>' % (kind, root.tag, kind))
    return root


def declared_name(name, declared, kind):
    """The object's name, from the `name` option and/or the <name> of the
    `declared` element (None when no XML was given); both must agree."""
    xml_name = None
    if declared is not None:
        xml_name = declared.findtext('name')
        if not (xml_name or '').strip():
            raise XMLError('Invalid %s XML: it has no <name>' % kind)
    for what, value in (('name', name), ('the <name> in xml', xml_name)):
        if value and value != value.strip():
            # libvirt keeps the white space as part of the name.
            raise XMLError('%s %r starts or ends with white space, which libvirt would keep as part of '
                           'the name; remove it' % (what, value))
    if name and xml_name and name != xml_name:
        raise XMLError('name %r disagrees with the <name> %r in xml' % (name, xml_name))
    if not (name or xml_name):
        raise XMLError('one of name or xml is required')
    return name or xml_name
