# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Growing a running domain without a restart.

When a running domain's new definition gives it more memory (up to the
maximum it runs with), more vCPUs (up to its maximum) or disks and network
interfaces it does not have, libvirt can apply that to the running guest:
balloon the memory up, hot-plug vCPUs, attach the devices.  `Growth` works
out those steps (pure: from the live XML and the definition) and carries
them out; whatever else changed still needs a restart (`pending_restart`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _sizes, _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import libvirt
from ansible_collections.lifecycle.libvirt.plugins.module_utils._states import GROW_MEMORY, GROW_VCPUS, HOTPLUG
from ansible_collections.lifecycle.libvirt.plugins.module_utils._wait import WaitTimeout, wait_until


# The guest's balloon driver gives the memory back within a second or so;
# libvirt shows the new size once it has.  A guest without the driver never
# does, and its result then says pending_restart.
BALLOON_WAIT_SECONDS = 20

# The device kinds attached live, and what identifies one of them.
_HOTPLUGGABLE = (('disk', 'target', 'dev'), ('interface', 'mac', 'address'))


def _kib(element):
    return _sizes.scaled_bytes(element) // 1024 if element is not None else None


def memory_kib(root):
    """(current, maximum) memory of a domain element, in KiB."""
    maximum = _kib(root.find('memory'))
    current = _kib(root.find('currentMemory'))
    return (current if current is not None else maximum), maximum


def vcpus(root):
    """(current, maximum) vCPUs of a domain element."""
    vcpu = root.find('vcpu')
    maximum = int(vcpu.text) if vcpu is not None else 1
    return int(vcpu.get('current', maximum)) if vcpu is not None else 1, maximum


class Growth:
    """What of `definition` the running domain (`live`, its live XML
    element) can take without a restart: `memory` (KiB) and `vcpus` to set,
    `devices` to attach (None / empty when nothing)."""

    def __init__(self, live, definition):
        live_memory, live_max_memory = memory_kib(live)
        memory = memory_kib(definition)[0]
        balloon = live.find('devices/memballoon')
        self.memory = memory if (live_memory < memory <= live_max_memory and balloon is not None
                                 and balloon.get('model') != 'none') else None
        live_vcpus, live_max_vcpus = vcpus(live)
        wanted_vcpus = vcpus(definition)[0]
        self.vcpus = wanted_vcpus if live_vcpus < wanted_vcpus <= live_max_vcpus else None
        self.devices = []
        for kind, path, attribute in _HOTPLUGGABLE:
            present = set(_xml.attribute_of(device, path, attribute) for device in live.iterfind('devices/' + kind))
            for device in definition.iterfind('devices/' + kind):
                identity = _xml.attribute_of(device, path, attribute)
                # A new interface without a MAC yet (libvirt gives it one on define) is new.
                if identity is None or identity.lower() not in set(p.lower() for p in present if p):
                    self.devices.append(device)

    @property
    def steps(self):
        return ([GROW_MEMORY] if self.memory is not None else []) + \
               ([GROW_VCPUS] if self.vcpus is not None else []) + ([HOTPLUG] if self.devices else [])

    def predicted_live(self, live):
        """The live element once the steps have run."""
        predicted = copy.deepcopy(live)
        if self.memory is not None:
            current = predicted.find('currentMemory')
            current.text, current.attrib['unit'] = str(self.memory), 'KiB'
        if self.vcpus is not None:
            predicted.find('vcpu').set('current', str(self.vcpus))
        devices = predicted.find('devices')
        for device in self.devices:
            devices.append(copy.deepcopy(device))
        return predicted

    def perform(self, client, domain, step):
        """Carry out one of `steps` on `domain` (a real run only); what is
        no longer to do (done meanwhile) is skipped."""
        name = domain.name()
        live = libvirt.VIR_DOMAIN_AFFECT_LIVE
        if step == GROW_MEMORY and self.memory is not None:
            client.call('balloon the memory of %s up to %d KiB' % (name, self.memory),
                        domain.setMemoryFlags, self.memory, live)
            try:
                wait_until(lambda: client.call('read the memory of %s' % name, domain.info)[2] >= self.memory,
                           BALLOON_WAIT_SECONDS, 'the balloon of %s' % name)
            except WaitTimeout:
                pass  # the guest does not answer the balloon: the result says pending_restart
        elif step == GROW_VCPUS and self.vcpus is not None:
            client.call('hot-plug vCPUs of %s (to %d)' % (name, self.vcpus), domain.setVcpusFlags, self.vcpus, live)
        elif step == HOTPLUG:
            for device in self.devices:
                client.call('hot-plug %s %s into %s' % (device.tag, _describe(device), name),
                            domain.attachDeviceFlags, _xml.to_text(_as_attached(device)), live)


def growth_of_defined(client, domain):
    """The Growth from the domain's stored definition (just defined: new
    interfaces now have the MAC libvirt gave them) to its live XML."""
    what = 'read the XML of %s' % domain.name()
    flags = libvirt.VIR_DOMAIN_XML_SECURE
    live = _xml.parse_xml(client.call(what, domain.XMLDesc, flags), 'libvirt XML')
    stored = _xml.parse_xml(client.call(what, domain.XMLDesc, flags | libvirt.VIR_DOMAIN_XML_INACTIVE), 'libvirt XML')
    return Growth(live, stored)


def _describe(device):
    return (_xml.attribute_of(device, 'target', 'dev') or _xml.attribute_of(device, 'mac', 'address')
            or device.get('type') or '')


def _as_attached(device):
    """`device` without its alias and address: the address the stored
    definition gave it may be taken in the running guest (its devices were
    placed when it started), so libvirt picks a free one."""
    device = copy.deepcopy(device)
    for child in device.findall('alias') + device.findall('address'):
        device.remove(child)
    return device
