# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one parser of sizes: the human ones users write (``512M``, ``10G``,
``1.5GiB``, ``4096``) and the ones libvirt's XML holds (a number and a
``unit`` attribute).

Single letters and ``KiB``/``MiB``/... are powers of 1024, ``KB``/``MB``/...
powers of 1000, as in libvirt's ``unit`` attribute.  A plain number is bytes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from decimal import Decimal, InvalidOperation

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

_SIZE = re.compile(r'^\s*(?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*(?P<unit>[A-Za-z]*)\s*$')


class SizeError(ValueError):
    """The size is not understood; the message says why."""


def parse_size(value, what='size'):
    """Bytes in `value` (an int, or a string such as ``10G``); raise SizeError."""
    if isinstance(value, bool) or value is None:
        raise SizeError('%s must be a number of bytes or a size such as 512M, 10G or 1.5GiB, not %r' % (what, value))
    if isinstance(value, int):
        if value < 0:
            raise SizeError('%s must not be negative (%d)' % (what, value))
        return value
    text = str(value)
    if text.strip().startswith('-'):
        raise SizeError('%s must not be negative (%s)' % (what, text.strip()))
    match = _SIZE.match(text)
    if match is None:
        raise SizeError('%s %r is not a size: write a number of bytes or a number with a unit '
                        'such as 512M, 10G or 1.5GiB' % (what, text))
    unit = match.group('unit').lower() or 'b'
    factor = _UNIT_FACTORS.get(unit)
    if factor is None:
        raise SizeError('%s %r has an unknown unit %r: use B, K, M, G, T, P, E (powers of 1024), '
                        'KiB, MiB, GiB, ... or KB, MB, GB, ... (powers of 1000)' % (what, text, match.group('unit')))
    try:
        size = Decimal(match.group('number')) * factor
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        raise SizeError('%s %r is not a size' % (what, text))
    if size != size.to_integral_value():
        raise SizeError('%s %r is not a whole number of bytes (%s)' % (what, text, size))
    return int(size)


def human_size(size):
    """``1073741824`` -> ``1 GiB``; for messages and diffs."""
    for unit, factor in (('EiB', 2 ** 60), ('PiB', 2 ** 50), ('TiB', 2 ** 40), ('GiB', 2 ** 30),
                         ('MiB', 2 ** 20), ('KiB', 2 ** 10)):
        if size >= factor:
            value = size / factor
            return '%s %s' % (('%d' % value) if value == int(value) else ('%.2f' % value), unit)
    return '%d bytes' % size


def scaled_bytes(element):
    """The size an XML element holds, in bytes, or None if it is not a size."""
    unit = element.get('unit')
    if unit is None and element.tag not in _KIB_DEFAULT_ELEMENTS:
        return None
    return unit_bytes(element.text, unit)


def unit_bytes(number, unit):
    """`number` `unit`s (KiB when None) in bytes, or None if it is not a size."""
    number = (number or '').strip()
    factor = _UNIT_FACTORS.get((unit or 'KiB').lower())
    if factor is None or not re.match(r'^\d+$', number):
        return None
    return int(number) * factor
