"""Checksums and URLs of volume content from a URL (pure)."""

import pytest

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _fetch
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed


def test_sha256_checksum_is_parsed_in_lower_case():
    assert _fetch.parse_checksum('sha256:' + 'AB' * 32) == 'ab' * 32


@pytest.mark.parametrize('checksum', [None, 'ab' * 32, 'sha256:' + 'ab' * 31, 'md5:' + 'ab' * 16,
                                      'sha256:' + 'zz' * 32, 'sha256: ' + 'ab' * 32])
def test_anything_else_is_refused(checksum):
    with pytest.raises(OperationFailed, match='sha256: followed by 64'):
        _fetch.parse_checksum(checksum)


@pytest.mark.parametrize('url, good', [('http://h/x.img', True), ('https://h:8443/x', True), ('ftp://h/x', False),
                                       ('file:///etc/passwd', False), ('http:///x', False), ('h/x', False)])
def test_only_http_and_https_urls_with_a_host(url, good):
    if good:
        _fetch.check_url(url)
    else:
        with pytest.raises(OperationFailed, match='http:// or https://'):
            _fetch.check_url(url)
