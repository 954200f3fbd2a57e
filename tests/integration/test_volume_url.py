"""A volume's content from a URL with a checksum, served on 127.0.0.1:
verified, not downloaded again, and nothing left behind by a wrong
checksum, an unreachable URL or a download cut short."""

import glob
import hashlib
import http.server
import os
import tempfile
import threading
import uuid

import pytest

import testbed
from conftest import run_module

IMAGE = os.urandom(3 * 1024 * 1024 + 123)
SHA256 = 'sha256:' + hashlib.sha256(IMAGE).hexdigest()


class Server:
    """An HTTP server on loopback serving IMAGE at /image.raw and, at
    /cut.raw, announcing IMAGE's length but closing halfway."""

    def __init__(self):
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                server.requests.append(self.path)
                if self.path not in ('/image.raw', '/cut.raw'):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Length', str(len(IMAGE)))
                self.end_headers()
                self.wfile.write(IMAGE if self.path == '/image.raw' else IMAGE[:len(IMAGE) // 2])
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d' % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    serving = Server()
    yield serving
    serving.close()


@pytest.fixture
def name(conn):
    volume = '%s%s-image.raw' % (testbed.TEST_PREFIX, uuid.uuid4().hex[:6])
    yield volume
    testbed.sweep(conn, volume)
    testbed.sweep(conn, '.' + volume)


def pool_names(conn):
    pool = conn.storagePoolLookupByName('default')
    pool.refresh(0)
    return pool.listVolumes()


def temporary_files():
    return set(glob.glob(os.path.join(tempfile.gettempdir(), 'lifecycle-libvirt-url-*')))


def test_image_is_downloaded_verified_and_not_downloaded_again(conn, server, name):
    before = temporary_files()
    params = dict(name=name, url=server.url + '/image.raw', checksum=SHA256)
    check = run_module('volume', check=True, **params)
    assert check['changed'] is True and check['actions'] == ['upload'] and check['capacity'] == len(IMAGE)
    assert name not in pool_names(conn)
    real = run_module('volume', **params)
    assert real['changed'] is True and real['actions'] == ['upload'] and real['downloaded'] is True
    assert real['diff'] == check['diff'] and real['capacity'] == len(IMAGE)
    volume = conn.storagePoolLookupByName('default').storageVolLookupByName(name)
    with open(volume.path(), 'rb') as handle:
        assert handle.read() == IMAGE
    assert len(server.requests) == 2  # check mode downloads too
    for check_mode in (True, False):
        again = run_module('volume', check=check_mode, **params)
        assert again['changed'] is False and again['downloaded'] is False and again['actions'] == []
    assert len(server.requests) == 2  # nothing downloaded again
    assert temporary_files() == before


def test_an_existing_volume_with_other_content_is_refused_not_overwritten(conn, server, name):
    run_module('volume', name=name, capacity='1M', format='raw')
    result = run_module('volume', name=name, url=server.url + '/image.raw', checksum=SHA256)
    assert result.get('failed') is True and 'does not hold the content of' in result['msg']
    assert server.requests == []
    volume = conn.storagePoolLookupByName('default').storageVolLookupByName(name)
    assert volume.info()[1] == 1024 * 1024


@pytest.mark.parametrize('path, checksum, message', [
    ('/image.raw', 'sha256:' + '0' * 64, 'its sha256 is %s' % SHA256[7:]),
    ('/cut.raw', SHA256, 'after %d' % (len(IMAGE) // 2)),
    ('/missing.raw', SHA256, 'Not Found'),
    (None, SHA256, 'Failed to download'),
    ('/image.raw', 'md5:abc', 'checksum must be sha256:'),
], ids=['wrong checksum', 'cut halfway', 'not found', 'unreachable', 'not sha256'])  # xdist workers must agree
def test_bad_downloads_leave_no_volume_and_no_file(conn, server, name, path, checksum, message):
    before = temporary_files()
    url = server.url + path if path else 'http://127.0.0.1:9/unreachable.raw'
    for check_mode in (True, False):
        result = run_module('volume', check=check_mode, name=name, url=url, checksum=checksum)
        assert result.get('failed') is True and message in result['msg'], result
        assert [v for v in pool_names(conn) if name in v] == []
    assert temporary_files() == before


def test_url_options_are_checked(conn, name):
    for options, message in ((dict(url='ftp://example.org/x', checksum=SHA256), 'http:// or https://'),
                             (dict(url='http://127.0.0.1/x'), 'required together'),
                             (dict(url='http://127.0.0.1/x', checksum=SHA256, clone_from='x'), 'cannot be used with')):
        result = run_module('volume', name=name, **options)
        assert result.get('failed') is True and message in result['msg'], result
