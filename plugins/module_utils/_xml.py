# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hardened XML parsing and the comparison of a declared domain XML with the
one libvirt holds.

libvirt fills in a lot when it stores a definition (uuid, MAC and PCI
addresses, controllers, memory in KiB, the expanded machine type).  A plain
string comparison therefore reports changes that are not there.  `reconcile`
instead walks the declared XML, matches each element with its counterpart in
libvirt's XML and produces

* the list of real differences (empty means "nothing to do"), and
* the XML to define: the declared XML completed with what libvirt generated,
  so that redefining never churns MAC addresses, uuids or PCI slots.

Rules, in short (documented for users in the domain module):

* attributes and text the user wrote must match (memory sizes compare in
  bytes, machine aliases such as ``pc`` compare by their canonical name);
* attributes and elements the user did not write are libvirt's defaults and
  are kept;
* a list the user wrote is complete: if the declared XML has two ``<disk>``
  elements and libvirt has three, the third is removed.  In ``<devices>`` a
  kind of device the user did not mention at all is removed as well, except
  the ones libvirt adds by itself (controllers, the memory balloon, the
  emulator, PS/2 input, audio, the console that mirrors a serial port, the
  video card of a graphical console).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os
import re

import traceback

try:
    from lxml import etree
    LXML_IMPORT_ERROR = None
except ImportError:  # reported by the module through missing_required_lib
    etree = None
    LXML_IMPORT_ERROR = traceback.format_exc()


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


_SCHEMA_DIR = '/usr/share/libvirt/schemas'


def schema_errors(element, schema='domain.rng'):
    """Validate against libvirt's RelaxNG schema when it is installed here
    (it is on every host with libvirt).  Returns None or the error text."""
    path = os.path.join(_SCHEMA_DIR, schema)
    if not os.path.exists(path):
        return None
    validator = etree.RelaxNG(etree.parse(path, _parser()))
    if validator.validate(element):
        return None
    return '; '.join('line %d: %s' % (e.line, e.message) for e in validator.error_log)


def to_text(element):
    """Pretty, stable serialisation used for diffs and for defining."""
    return etree.tostring(element, pretty_print=True, encoding='unicode')


def masked_text(element, secret_attributes=('passwd',)):
    """Like to_text, with secrets (VNC/SPICE passwords) replaced for display."""
    shown = copy.deepcopy(element)
    for node in shown.iter():
        for attribute in secret_attributes:
            if attribute in node.attrib:
                node.set(attribute, '********')
    return to_text(shown)


# Sizes ---------------------------------------------------------------------

_UNIT_FACTORS = {
    'b': 1, 'bytes': 1,
    'kb': 10 ** 3, 'k': 2 ** 10, 'kib': 2 ** 10,
    'mb': 10 ** 6, 'm': 2 ** 20, 'mib': 2 ** 20,
    'gb': 10 ** 9, 'g': 2 ** 30, 'gib': 2 ** 30,
    'tb': 10 ** 12, 't': 2 ** 40, 'tib': 2 ** 40,
    'pb': 10 ** 15, 'p': 2 ** 50, 'pib': 2 ** 50,
    'eb': 10 ** 18, 'e': 2 ** 60, 'eib': 2 ** 60,
}

# Elements whose value is a size in KiB when no unit is written.
_KIB_DEFAULT_ELEMENTS = frozenset(('memory', 'currentMemory', 'maxMemory'))


def scaled_bytes(element):
    """The size an element holds, in bytes, or None if it is not a size."""
    text = (element.text or '').strip()
    unit = element.get('unit')
    if unit is None and element.tag not in _KIB_DEFAULT_ELEMENTS:
        return None
    if not re.match(r'^\d+$', text):
        return None
    factor = _UNIT_FACTORS.get((unit or 'KiB').lower())
    if factor is None:
        return None
    return int(text) * factor


# Reconciliation --------------------------------------------------------------

# How two elements of the same kind are recognised as "the same one": the
# (path, attribute) pairs that identify it.  Only the fields the declared
# element actually has are compared; without any, elements pair by position.
_IDENTITY_FIELDS = {
    'disk': (('target', 'dev'),),
    'interface': (('mac', 'address'),),
    'controller': (('.', 'type'), ('.', 'index')),
    'input': (('.', 'type'), ('.', 'bus')),
    'graphics': (('.', 'type'),),
    'filesystem': (('target', 'dir'),),
    'serial': (('target', 'port'),),
    'console': (('target', 'type'), ('target', 'port')),
    'channel': (('target', 'type'), ('target', 'name')),
    'hostdev': (('source/address', 'bus'), ('source/address', 'slot'), ('source/address', 'function')),
}

# Device kinds libvirt adds on its own; a declaration that does not mention
# them must not read as "remove them".
_SELF_ADDED_DEVICES = frozenset(('emulator', 'controller', 'memballoon', 'audio'))


class Reconciliation:
    """Outcome of comparing a declared XML with libvirt's: `differences` (a
    list of readable strings) and `merged` (the element to define)."""

    def __init__(self, merged, differences):
        self.merged = merged
        self.differences = differences

    @property
    def changed(self):
        return bool(self.differences)


def reconcile(declared, actual, machine_aliases=None):
    """Compare the declared domain element with libvirt's and merge them."""
    differences = []
    merged = _Reconciler(machine_aliases or {}, differences).element(declared, actual, '/' + declared.tag)
    return Reconciliation(merged, differences)


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


class _Reconciler:
    def __init__(self, machine_aliases, differences):
        self.machine_aliases = machine_aliases
        self.differences = differences

    def note(self, message):
        self.differences.append(message)

    # values --------------------------------------------------------------
    def _attribute_equal(self, name, declared, actual):
        if declared == actual:
            return True
        if name == 'machine':
            return self.machine_aliases.get(declared, declared) == self.machine_aliases.get(actual, actual)
        return False

    def element(self, declared, actual, path):
        """Merge one pair of matched elements, noting differences under `path`."""
        merged = etree.Element(actual.tag)
        declared_size, actual_size = scaled_bytes(declared), scaled_bytes(actual)
        if declared_size is not None and actual_size is not None:
            # A size: compare in bytes, keep libvirt's spelling when equal.
            value_equal = declared_size == actual_size
            if not value_equal:
                self.note('%s: %s -> %s bytes' % (path, actual_size, declared_size))
            source = actual if value_equal else declared
            merged.text = source.text
            if source.get('unit') is not None:
                merged.set('unit', source.get('unit'))
            attributes_to_compare = [a for a in declared.attrib if a != 'unit']
        else:
            declared_text = (declared.text or '').strip()
            actual_text = (actual.text or '').strip()
            # An element the user left empty takes libvirt's value.
            value_equal = not declared_text or declared_text == actual_text
            if not value_equal:
                self.note('%s: %r -> %r' % (path, actual_text, declared_text))
            merged.text = actual.text if value_equal else declared.text
            attributes_to_compare = list(declared.attrib)

        for name in attributes_to_compare:
            declared_value, actual_value = declared.get(name), actual.get(name)
            if actual_value is not None and self._attribute_equal(name, declared_value, actual_value):
                merged.set(name, actual_value)
            else:
                self.note('%s/@%s: %r -> %r' % (path, name, actual_value, declared_value))
                merged.set(name, declared_value)
        if value_equal:
            # Attributes libvirt added (placement, check, index ...) are kept,
            # but not next to a value the user changed: they may describe the
            # old value (e.g. vcpu's current=).
            for name, value in actual.attrib.items():
                if name not in declared.attrib and name not in merged.attrib:
                    merged.set(name, value)
        self.children(declared, actual, merged, path)
        return merged

    def children(self, declared, actual, merged, path):
        pairs = self._pair(list(declared), list(actual))
        paired_actual = {id(a): d for d, a in pairs if a is not None}
        declared_tags = set(child.tag for child in declared)
        in_devices = actual.tag == 'devices'
        for child in actual:
            if id(child) in paired_actual:
                declared_child = paired_actual[id(child)]
                merged.append(self.element(declared_child, child, '%s/%s' % (path, _describe(declared_child))))
            elif self._keeps(child, declared, actual, declared_tags, in_devices):
                merged.append(copy.deepcopy(child))
            else:
                self.note('%s/%s: removed' % (path, _describe(child)))
        for declared_child, actual_child in pairs:
            if actual_child is None:
                self.note('%s/%s: added' % (path, _describe(declared_child)))
                _insert_after_same_tag(merged, copy.deepcopy(declared_child))

    def _keeps(self, child, declared, actual, declared_tags, in_devices):
        """Whether an element only libvirt's XML has is a default to keep."""
        if child.tag == 'currentMemory' and declared.find('currentMemory') is None:
            # libvirt sets currentMemory to memory when it is not given; keep
            # the balloon size only while memory itself is unchanged.
            memory_declared, memory_actual = declared.find('memory'), actual.find('memory')
            return memory_declared is None or scaled_bytes(memory_declared) == scaled_bytes(memory_actual)
        if not in_devices:
            # Outside <devices> an element kind the user wrote is a complete
            # list; one the user did not write is libvirt's default.
            return child.tag not in declared_tags
        if child.tag in _SELF_ADDED_DEVICES:
            return True
        if child.tag == 'input':
            return child.get('bus') == 'ps2'
        if child.tag == 'console':
            # The console libvirt derives from the first serial port.
            target = child.find('target')
            return 'console' not in declared_tags and target is not None and target.get('type') == 'serial'
        if child.tag == 'video':
            return 'video' not in declared_tags and 'graphics' in declared_tags
        return False

    @staticmethod
    def _pair(declared_children, actual_children):
        """Pair each declared child with an actual one of the same tag:
        by identity fields when the declared child has them, else by order."""
        unpaired = list(actual_children)
        pairs = []
        positional = []
        for child in declared_children:
            fields = _IDENTITY_FIELDS.get(child.tag, ())
            wanted = [(p, a, v) for p, a, v in _identity(child, fields) if v is not None]
            if not wanted:
                positional.append(child)
                pairs.append([child, None])
                continue
            match = next((a for a in unpaired if a.tag == child.tag
                          and all(attribute_of(a, p, attr) == v for p, attr, v in wanted)), None)
            if match is not None:
                unpaired.remove(match)
            pairs.append([child, match])
        for pair in pairs:
            if pair[0] in positional:
                match = next((a for a in unpaired if a.tag == pair[0].tag), None)
                if match is not None:
                    unpaired.remove(match)
                pair[1] = match
        return [tuple(pair) for pair in pairs]


def _insert_after_same_tag(parent, element):
    """Place a new element after the last sibling of its kind (or at the end)."""
    same = [child for child in parent if child.tag == element.tag]
    if same:
        same[-1].addnext(element)
    else:
        parent.append(element)


def without_runtime_state(domain):
    """The definition in a live dump (`virsh dumpxml` of a running domain,
    recognisable by its id= attribute), without what only describes the
    running QEMU process: ids, device aliases, pty paths, detected backing
    chains, the default resource partition, dynamic security labelling, host
    interface names, automatic ports and the CPU as libvirt expanded it.
    Any other document is returned as it is."""
    if domain.get('id') is None:
        return domain
    domain = copy.deepcopy(domain)
    del domain.attrib['id']
    removed = []
    removed += [a for a in domain.iter('alias') if not (a.get('name') or '').startswith('ua-')]
    removed += domain.findall('devices/disk/backingStore') + domain.findall('devices/interface/target')
    removed += [r for r in domain.findall('resource') if r.findtext('partition') == '/machine']
    removed += [seclabel for seclabel in domain.findall('seclabel') if seclabel.get('type') == 'dynamic']
    removed += domain.findall('cpu')  # libvirt's expansion of the model, not the user's choice
    for chardev in domain.find('devices') if domain.find('devices') is not None else []:
        if chardev.tag in ('serial', 'console', 'parallel', 'channel') and chardev.get('type') == 'pty':
            chardev.attrib.pop('tty', None)
            removed += [source for source in chardev.findall('source') if source.get('path')]
    for element in removed:
        element.getparent().remove(element)
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
