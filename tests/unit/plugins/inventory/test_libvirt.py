"""Pure parts of the lifecycle.libvirt.libvirt inventory plugin."""

from ansible_collections.lifecycle.libvirt.plugins.inventory import libvirt as plugin
from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml

NS = 'https://github.com/lifecycle-libvirt/lifecycle.libvirt/xmlns/tags/1.0'


def test_metadata_tags_of_the_namespace_only():
    root = _xml.parse_xml(
        "<domain><metadata><ll:tags xmlns:ll='%s'><ll:tag>web</ll:tag><ll:tag> </ll:tag><tag>blue</tag></ll:tags>"
        "<o:tags xmlns:o='urn:other'><o:tag>no</o:tag></o:tags></metadata></domain>" % NS)
    assert plugin.metadata_tags(root, NS) == ['web', 'blue']
    assert plugin.metadata_tags(_xml.parse_xml('<domain/>'), NS) == []


def test_first_address_prefers_ipv4():
    v6 = dict(address='fd00::5', family='ipv6')
    v4 = dict(address='192.168.1.5', family='ipv4')
    assert plugin.first_address([dict(addresses=[v6]), dict(addresses=[v4])]) == '192.168.1.5'
    assert plugin.first_address([dict(addresses=[v6])]) == 'fd00::5'
    assert plugin.first_address([dict(addresses=[]), dict()]) is None
