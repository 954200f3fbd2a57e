"""The one parser of human sizes."""

import pytest

from ansible_collections.lifecycle.libvirt.plugins.module_utils._sizes import SizeError, human_size, parse_size, scaled_bytes
from ansible_collections.lifecycle.libvirt.plugins.module_utils._xml import parse_xml


@pytest.mark.parametrize('value,expected', [
    (0, 0),
    (4096, 4096),
    ('4096', 4096),
    (' 4096 ', 4096),
    ('512M', 512 << 20),
    ('512m', 512 << 20),
    ('10G', 10 << 30),
    ('10 GiB', 10 << 30),
    ('1.5GiB', 3 << 29),
    ('.5K', 512),
    ('10GB', 10 * 10 ** 9),
    ('1kb', 1000),
    ('2T', 2 << 40),
    ('7B', 7),
    ('7bytes', 7),
])
def test_sizes_parse(value, expected):
    assert parse_size(value) == expected


@pytest.mark.parametrize('value,message', [
    ('ten', 'is not a size'),
    ('', 'is not a size'),
    ('10 G B', 'is not a size'),
    ('1e9', 'is not a size'),
    ('10Q', "unknown unit 'Q'"),
    ('-5G', 'must not be negative'),
    (-1, 'must not be negative'),
    ('1.5', 'not a whole number of bytes'),
    ('0.1K', 'not a whole number of bytes'),
    (True, 'must be a number of bytes'),
    (None, 'must be a number of bytes'),
    ('1..5G', 'is not a size'),
])
def test_nonsense_is_refused_with_a_reason(value, message):
    with pytest.raises(SizeError, match=message):
        parse_size(value, 'capacity')


def test_message_names_the_option():
    with pytest.raises(SizeError, match="^capacity 'x' is not a size"):
        parse_size('x', 'capacity')


@pytest.mark.parametrize('size,text', [(0, '0 bytes'), (512, '512 bytes'), (1024, '1 KiB'), (3 << 29, '1.50 GiB'),
                                       (10 << 30, '10 GiB')])
def test_human_size(size, text):
    assert human_size(size) == text


@pytest.mark.parametrize('xml,expected', [
    ("<memory unit='MiB'>256</memory>", 256 * 2 ** 20),
    ('<memory>1024</memory>', 1024 * 1024),
    ("<memory unit='GB'>1</memory>", 10 ** 9),
    ("<size unit='bytes'>7</size>", 7),
    ('<vcpu>2</vcpu>', None),
    ("<memory unit='parsecs'>1</memory>", None),
])
def test_scaled_bytes(xml, expected):
    assert scaled_bytes(parse_xml(xml)) == expected
