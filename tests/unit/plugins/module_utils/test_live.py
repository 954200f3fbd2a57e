"""What a running domain can take live (pure: from two XML elements)."""

from lxml import etree

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _live as L


def domain(memory=384, current=256, vcpus='<vcpu current="1">2</vcpu>', devices='', balloon='virtio'):
    return etree.fromstring(
        '<domain><memory unit="MiB">%d</memory><currentMemory unit="MiB">%d</currentMemory>%s<devices>'
        '<disk><target dev="vda"/></disk><interface type="network"><mac address="52:54:00:00:00:01"/></interface>'
        '%s<memballoon model="%s"/></devices></domain>' % (memory, current, vcpus, devices, balloon))


def test_nothing_new_nothing_to_do():
    growth = L.Growth(domain(), domain())
    assert growth.steps == [] and growth.memory is None and growth.vcpus is None


def test_memory_and_vcpus_up_to_the_running_maximum():
    growth = L.Growth(domain(), domain(current=384, vcpus='<vcpu>2</vcpu>'))
    assert growth.steps == [L.GROW_MEMORY, L.GROW_VCPUS]
    assert (growth.memory, growth.vcpus) == (384 * 1024, 2)
    predicted = growth.predicted_live(domain())
    assert predicted.findtext('currentMemory') == str(384 * 1024) and predicted.find('vcpu').get('current') == '2'


def test_past_the_maximum_down_or_without_a_balloon_is_not_live():
    assert L.Growth(domain(), domain(memory=512, current=512, vcpus='<vcpu>3</vcpu>')).steps == []
    assert L.Growth(domain(current=256), domain(current=128)).steps == []
    assert L.Growth(domain(balloon='none'), domain(current=384, balloon='none')).steps == []


def test_new_disks_and_interfaces_are_hot_plugged_known_ones_are_not():
    new = ('<disk><target dev="vdb"/></disk><interface type="user"/>'
           '<interface type="network"><mac address="52:54:00:00:00:02"/></interface>')
    growth = L.Growth(domain(), domain(devices=new))
    assert growth.steps == [L.HOTPLUG]
    assert [(d.tag, d.findtext('mac') or d.find('target') is not None) for d in growth.devices] == [
        ('disk', True), ('interface', False), ('interface', False)]
    upper_case_mac = domain()
    upper_case_mac.find('devices/interface/mac').set('address', '52:54:00:00:00:01'.upper())
    assert L.Growth(domain(), upper_case_mac).steps == []
