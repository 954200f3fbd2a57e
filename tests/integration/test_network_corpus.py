"""Zero churn over the examples of libvirt's network XML documentation.

Every document of tests/data/networks (the examples of formatnetwork.html,
written by tests/data/make_corpus.py --formatnetwork) goes through the
network logic against the real libvirtd, made to fit this host (see
`as_test_network`):
define; define again and check mode (no change); its own `virsh net-dumpxml`,
inactive and plain (no change); and the stored definition is what
`virsh net-define` makes of the document (apart from the uuid and MAC
libvirt generates).  Networks are defined, never started, so no bridge,
route or dnsmasq is touched.  A document libvirt itself refuses here is
skipped with libvirt's reason.
"""

import contextlib
import glob
import os
import subprocess
import sys

import libvirt
import pytest
from lxml import etree

from conftest import REPO, URI

import testbed

sys.path.insert(0, os.path.join(REPO, '.build', 'collections'))
from ansible_collections.lifecycle.libvirt.plugins.module_utils import _network  # noqa: E402
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtClient  # noqa: E402

DATA = os.path.join(REPO, 'tests', 'data', 'networks')
DOCUMENTS = sorted(glob.glob(os.path.join(DATA, '*', '*.xml')))
PREFIX = testbed.TEST_PREFIX + 'netcorpus-'


@pytest.fixture(scope='module')
def client(conn):
    libvirt_client = LibvirtClient(URI)
    yield libvirt_client
    libvirt_client.close()


def as_test_network(text, index):
    """The document under a test name, without its uuid, made to fit this
    host without touching what it has: its own bridge name (the examples'
    virbrN may be the host's), host interfaces and bridges of test names that
    `host_links` creates, and 192.168.122.0/24 (the host's own "default"
    network) moved to a test range.  Returns the XML and the links it needs
    as [(name, kind)]."""
    root = etree.fromstring(text.replace('192.168.122.', '172.29.122.').encode())
    root.find('name').text = PREFIX + index
    for element in root.findall('uuid'):
        root.remove(element)
    links = []
    for element in root.findall('bridge'):
        if element.get('name'):
            element.set('name', 'lltnc%s' % index)
            if root.find("forward[@mode='bridge']") is not None:
                links.append((element.get('name'), 'bridge'))
    devices = [root.find('forward')] if root.find('forward') is not None else []
    devices += root.findall('forward/interface')
    renamed = {}
    for element in devices:
        if element.get('dev'):
            dev = renamed.setdefault(element.get('dev'), 'lltnd%s%d' % (index, len(renamed)))
            element.set('dev', dev)
            links.append((dev, 'veth'))
    return etree.tostring(root, encoding='unicode'), sorted(set(links))


@contextlib.contextmanager
def host_links(links):
    """The host interfaces a document names, for as long as it is tested."""
    try:
        for name, kind in links:
            # No dummy module here: an interface is one end of a veth pair.
            peer = ['peer', 'name', name + 'p'] if kind == 'veth' else []
            subprocess.run(['ip', 'link', 'add', name, 'type', kind] + peer, check=True, capture_output=True)
        yield
    finally:
        for name, _kind in links:
            subprocess.run(['ip', 'link', 'del', name], check=False, capture_output=True)


def converge(client, xml, check=False):
    params = dict((key, spec.get('default')) for key, spec in _network.NETWORK_ARGUMENT_SPEC.items())
    params.update(xml=xml, state='present')
    return _network.converge_network(client, params, check)


def comparable(xml):
    root = etree.fromstring(xml.encode(), etree.XMLParser(remove_blank_text=True))
    for element in root.findall('uuid') + root.findall('mac'):
        root.remove(element)
    return etree.tostring(root, pretty_print=True, encoding='unicode')


def what_libvirt_defines(conn, xml):
    """What `virsh net-define` stores for `xml`, or libvirt's reason to refuse it."""
    try:
        network = conn.networkDefineXML(xml)
    except libvirt.libvirtError as exc:
        return None, exc.get_error_message()
    try:
        return network.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE), None
    finally:
        network.undefine()


def undefine(conn, name):
    try:
        conn.networkLookupByName(name).undefine()
    except libvirt.libvirtError:
        pass


@pytest.mark.parametrize('path', DOCUMENTS, ids=[os.path.relpath(p, DATA) for p in DOCUMENTS])
def test_network_document_converges_without_churn(client, conn, path):
    index = os.path.basename(path)[:-4]
    name = PREFIX + index
    with open(path) as document:
        xml, links = as_test_network(document.read(), index)
    expected, refused = what_libvirt_defines(conn, xml)
    if refused:
        pytest.skip('libvirt refuses this document here: %s' % refused)
    try:
        with host_links(links):
            check = converge(client, xml, check=True)
            first = converge(client, xml)
            assert first['changed'] is True, first
            assert (check['changed'], check['actions'], check['diff']) == (
                first['changed'], first['actions'], first['diff'])
            stored = conn.networkLookupByName(name)
            assert comparable(stored.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)) == comparable(expected)
            before = stored.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE)
            for declared, what in ((xml, 'the same document again'),
                                   (stored.XMLDesc(0), 'virsh net-dumpxml'),
                                   (before, 'net-dumpxml --inactive')):
                for check_mode in (True, False):
                    again = converge(client, declared, check_mode)
                    assert again['changed'] is False, '%s (check=%s): %s' % (what, check_mode, again)
            assert stored.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE) == before
    finally:
        undefine(conn, name)
