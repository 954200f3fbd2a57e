"""Zero churn over a corpus of domain XML written by real clients.

Every document of tests/data/domains (virt-install --print-xml over many
option combinations, `virsh dumpxml` of those domains stopped and running,
and the examples of libvirt's domain XML documentation; regenerate them with
tests/data/make_corpus.py) goes through the domain logic against the real
libvirtd: define; define again and check mode (no change); its own dumpxml,
inactive and plain (no change); and a real change, after which the stored
definition is exactly what `virsh define` makes of the user's XML (apart
from the uuid, MAC and device addresses that are kept).

The converge logic runs in-process (the module's module_utils against
qemu:///system) to keep the corpus fast; the last tests go through the real
module process.  A document libvirt itself refuses here is skipped with
libvirt's reason.  Domains are never started.
"""

import glob
import os
import re
import sys
import uuid

import libvirt
import pytest
from lxml import etree

from conftest import REPO, URI, run_module

import testbed

# The converge logic is imported as Ansible imports it (as the unit tests do).
sys.path.insert(0, os.path.join(REPO, '.build', 'collections'))
from ansible_collections.lifecycle.libvirt.plugins.module_utils import _domain, _xml  # noqa: E402
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtClient  # noqa: E402

DATA = os.path.join(REPO, 'tests', 'data', 'domains')
DOCUMENTS = sorted(glob.glob(os.path.join(DATA, '*', '*.xml')))
PREFIX = testbed.TEST_PREFIX + 'corpus-'
SECURE_INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


@pytest.fixture(scope='module')
def client(conn):
    libvirt_client = LibvirtClient(URI)
    yield libvirt_client
    testbed.sweep(conn, PREFIX)
    libvirt_client.close()


def as_test_domain(text, name):
    """The document under a test name, with a fresh uuid when it has one."""
    root = etree.fromstring(text.encode())
    root.find('name').text = name
    if root.find('uuid') is not None:
        root.find('uuid').text = str(uuid.uuid4())
    return etree.tostring(root, encoding='unicode')


def converge(client, xml, check=False):
    params = dict((key, spec.get('default')) for key, spec in _domain.DOMAIN_ARGUMENT_SPEC.items())
    params.update(xml=xml, state='defined')
    return _domain.converge_domain(client, _domain.DomainSpec(params), check)


def what_libvirt_defines(conn, xml):
    """What `virsh define` stores for `xml` (under a scratch name), or the
    reason libvirt refuses it."""
    root = etree.fromstring(xml.encode())
    scratch = root.find('name').text + '-ref'
    root.find('name').text = scratch
    for element in root.findall('uuid'):
        root.remove(element)
    try:
        domain = conn.defineXML(etree.tostring(root, encoding='unicode'))
    except libvirt.libvirtError as exc:
        return None, exc.get_error_message()
    try:
        return domain.XMLDesc(SECURE_INACTIVE).replace(scratch, root.find('name').text[:-4]), None
    finally:
        domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)


def comparable(xml):
    """A definition without the identifiers a redefinition keeps from before
    (uuid, genid, MAC and device addresses, Open vSwitch port ids), for
    comparing two definitions."""
    root = etree.fromstring(xml.encode(), etree.XMLParser(remove_blank_text=True))
    for parameters in root.iterfind('devices/interface/virtualport/parameters'):
        parameters.attrib.pop('interfaceid', None)
    removed = root.findall('uuid') + root.findall('genid') + root.findall('devices/interface/mac')
    removed += [a for a in root.iter('address') if a.getparent().getparent() is not None
                and a.getparent().getparent().tag == 'devices']
    for element in removed:
        element.getparent().remove(element)
    return etree.tostring(root, pretty_print=True, encoding='unicode')


def stored(client, name):
    return client.domain(name).XMLDesc(SECURE_INACTIVE)


def assert_no_change(client, xml, what):
    for check in (True, False):
        result = converge(client, xml, check)
        assert result['changed'] is False, '%s (check=%s): %s' % (what, check, result['differences'])


@pytest.mark.parametrize('path', DOCUMENTS, ids=[os.path.relpath(p, DATA) for p in DOCUMENTS])
def test_document_converges_without_churn(client, conn, path):
    name = PREFIX + re.sub(r'[^a-z0-9]+', '-', os.path.relpath(path, DATA).lower())[:-4]
    with open(path) as document:
        xml = as_test_domain(document.read(), name)
    expected, refused = what_libvirt_defines(conn, _xml.to_text(_xml.without_runtime_state(_xml.parse_xml(xml))))
    if refused:
        pytest.skip('libvirt refuses this document here: %s' % refused)
    try:
        check = converge(client, xml, check=True)
        first = converge(client, xml)
        assert first['changed'] is True and first['actions'] == ['define']
        assert (check['changed'], check['diff'], check['differences']) == (
            first['changed'], first['diff'], first['differences'])
        assert comparable(stored(client, name)) == comparable(expected)
        before = stored(client, name)
        assert_no_change(client, xml, 'the same document again')
        assert stored(client, name) == before
        assert_no_change(client, client.domain(name).XMLDesc(0), 'virsh dumpxml')
        assert_no_change(client, client.domain(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), 'dumpxml --inactive')
        # A real change redefines it as libvirt defines the user's XML.
        root = etree.fromstring(xml.encode())
        for title in root.findall('title'):
            root.remove(title)
        root.find('name').addnext(etree.fromstring('<title>changed by the corpus test</title>'))
        changed = etree.tostring(root, encoding='unicode')
        predicted = converge(client, changed, check=True)
        redefined = converge(client, changed)
        assert redefined['changed'] is True and redefined['actions'] == ['define']
        assert (predicted['changed'], predicted['diff'], predicted['differences']) == (
            redefined['changed'], redefined['diff'], redefined['differences'])
        assert any('/domain/title' in difference for difference in redefined['differences'])
        expected_after, _refused = what_libvirt_defines(conn, _xml.to_text(
            _xml.without_runtime_state(_xml.parse_xml(changed))))
        assert comparable(stored(client, name)) == comparable(expected_after)
        assert_no_change(client, changed, 'the changed document again')
    finally:
        domain = client.domain(name)
        if domain is not None:
            domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)


@pytest.mark.parametrize('document', ['virt-install/q35-usb2.xml', 'virt-install/console-pty.xml',
                                      'dumpxml/channel-agent.live.xml'])
def test_documents_through_the_module_process(conn, document):
    """The same promise through the module as Ansible runs it."""
    name = PREFIX + 'module-' + re.sub(r'[^a-z0-9]+', '-', document)[:-4]
    with open(os.path.join(DATA, document)) as text:
        xml = as_test_domain(text.read(), name)
    try:
        assert run_module('domain', xml=xml, state='defined')['changed'] is True
        for check in (True, False):
            again = run_module('domain', check=check, xml=xml, state='defined')
            assert again['changed'] is False and again['differences'] == []
        dumped = conn.lookupByName(name).XMLDesc(0)
        assert run_module('domain', xml=dumped, state='defined')['changed'] is False
    finally:
        testbed.sweep(conn, name)
