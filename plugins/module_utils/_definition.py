# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A domain declared with structured options instead of XML.

`build_domain_xml` turns a resolved definition (plain values, nothing to
look up) into domain XML; it is pure.  `structured_domain_spec` validates
the options against the host - the pools, volumes and networks named, the
firmware, CPU modes and TPM backends libvirt reports in its domain
capabilities - and hands the XML to `DomainSpec` exactly as if it had been
given as `xml`, so comparison, check mode, diff and `pending_restart` are
the ones of `xml`.  Nothing is looked up but read: check mode is safe.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _states as S
from ansible_collections.lifecycle.libvirt.plugins.module_utils import _xml
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed, libvirt
from ansible_collections.lifecycle.libvirt.plugins.module_utils._domain import GUEST_AGENT_CHANNEL, DomainSpec
from ansible_collections.lifecycle.libvirt.plugins.module_utils._sizes import SizeError, parse_size

# The namespace of the <metadata> element holding `tags`: the inventory
# plugin's default `tags_namespace`, so the tags become `libvirt_tags`.
TAGS_NAMESPACE = 'https://github.com/lifecycle-libvirt/lifecycle.libvirt/xmlns/tags/1.0'

CPU_MODES = ('host-passthrough', 'host-model', 'custom')
FIRMWARES = ('bios', 'uefi')
DISK_BUSES = ('virtio', 'sata', 'scsi', 'ide', 'usb')
DISK_DEVICES = ('disk', 'cdrom')
DISK_CACHES = ('default', 'none', 'writethrough', 'writeback', 'directsync', 'unsafe')
BOOT_DEVICES = ('hd', 'cdrom', 'network')
GRAPHICS = ('none', 'vnc', 'spice')

# The name prefix of a disk's target device on each bus.
_TARGET_PREFIX = {'virtio': 'vd', 'sata': 'sd', 'scsi': 'sd', 'usb': 'sd', 'ide': 'hd'}

STRUCTURED_ARGUMENT_SPEC = dict(
    memory=dict(type='str'),
    max_memory=dict(type='str'),
    vcpus=dict(type='int'),
    max_vcpus=dict(type='int'),
    virt_type=dict(type='str', choices=['kvm', 'qemu']),
    arch=dict(type='str'),
    machine=dict(type='str'),
    cpu_mode=dict(type='str', choices=list(CPU_MODES)),
    cpu_model=dict(type='str'),
    firmware=dict(type='str'),
    secure_boot=dict(type='bool'),
    boot=dict(type='list', elements='str'),
    kernel=dict(type='str'),
    initrd=dict(type='str'),
    cmdline=dict(type='str'),
    disks=dict(type='list', elements='dict', options=dict(
        pool=dict(type='str'),
        volume=dict(type='str'),
        path=dict(type='str'),
        bus=dict(type='str', choices=list(DISK_BUSES)),
        device=dict(type='str', choices=list(DISK_DEVICES), default='disk'),
        cache=dict(type='str', choices=list(DISK_CACHES)),
        readonly=dict(type='bool', default=False),
        format=dict(type='str'),
    )),
    interfaces=dict(type='list', elements='dict', options=dict(
        network=dict(type='str'),
        bridge=dict(type='str'),
        direct=dict(type='str'),
        mac=dict(type='str'),
        model=dict(type='str', default='virtio'),
    )),
    graphics=dict(type='str', choices=list(GRAPHICS)),
    graphics_listen=dict(type='str'),
    graphics_password=dict(type='str', no_log=True),
    serial_console=dict(type='bool'),
    serial_log=dict(type='str'),
    guest_agent=dict(type='bool'),
    rng=dict(type='bool'),
    tpm=dict(type='bool'),
    description=dict(type='str'),
    tags=dict(type='list', elements='str'),
)


class DefinitionError(ValueError):
    """The structured options cannot make a domain; the message says why."""


# Pure: options -> XML ---------------------------------------------------------

def _sub(parent, tag, text=None, **attributes):
    element = _xml.etree.SubElement(parent, tag, {k: v for k, v in attributes.items() if v is not None})
    if text is not None:
        element.text = text
    return element


def disk_targets(disks):
    """Target device names (vda, vdb, sda, hda...) in the order of `disks`,
    numbered per prefix."""
    used = {}
    targets = []
    for disk in disks:
        prefix = _TARGET_PREFIX[disk['bus']]
        index = used.get(prefix, 0)
        used[prefix] = index + 1
        targets.append(prefix + _drive_letters(index))
    return targets


def _drive_letters(index):
    """0 -> a, 25 -> z, 26 -> aa: the kernel's naming of drives."""
    letters = ''
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord('a') + rest) + letters
    return letters


def memory_kib(value, what):
    """`value` (a size such as 512M) in KiB, which is what libvirt stores."""
    try:
        size = parse_size(value, what)
    except SizeError as exc:
        raise DefinitionError(str(exc))
    if size == 0 or size % 1024:
        raise DefinitionError('%s %s must be a positive whole number of KiB' % (what, value))
    return size // 1024


def build_domain_xml(d):
    """The domain element for the resolved definition `d` (a dict: see
    `resolve_definition` for its keys)."""
    domain = _xml.etree.Element('domain', type=d['virt_type'])
    _sub(domain, 'name', d['name'])
    if d['description'] is not None:
        _sub(domain, 'description', d['description'])
    if d['tags']:
        metadata = _sub(domain, 'metadata')
        tags = _xml.etree.SubElement(metadata, '{%s}tags' % TAGS_NAMESPACE, nsmap={'ll': TAGS_NAMESPACE})
        for text in d['tags']:
            _xml.etree.SubElement(tags, '{%s}tag' % TAGS_NAMESPACE).text = text
    _sub(domain, 'memory', str(d['max_memory_kib']), unit='KiB')
    _sub(domain, 'currentMemory', str(d['memory_kib']), unit='KiB')
    _sub(domain, 'vcpu', str(d['max_vcpus']), placement='static',
         current=str(d['vcpus']) if d['vcpus'] != d['max_vcpus'] else None)
    _os(domain, d)
    features = _sub(domain, 'features')
    _sub(features, 'acpi')
    _sub(features, 'apic')
    if d['secure_boot']:
        _sub(features, 'smm', state='on')
    _cpu(domain, d)
    devices = _sub(domain, 'devices')
    for disk, target in zip(d['disks'], disk_targets(d['disks'])):
        _disk(devices, disk, target)
    for interface in d['interfaces']:
        _interface(devices, interface)
    if d['serial_log'] is not None:
        # append='off': the log starts empty with each new QEMU process.
        serial = _sub(devices, 'serial', type='pty')
        _sub(serial, 'log', file=d['serial_log'], append='off')
        _sub(serial, 'target', port='0')
    if d['serial_console']:
        _sub(_sub(devices, 'console', type='pty'), 'target', type='serial', port='0')
    if d['guest_agent']:
        _sub(_sub(devices, 'channel', type='unix'), 'target', type='virtio', name=GUEST_AGENT_CHANNEL)
    if d['graphics'] != 'none':
        graphics = _sub(devices, 'graphics', type=d['graphics'], autoport='yes', passwd=d['graphics_password'])
        if d['graphics_listen'] is not None:
            _sub(graphics, 'listen', type='address', address=d['graphics_listen'])
    if d['rng']:
        _sub(_sub(devices, 'rng', model='virtio'), 'backend', '/dev/urandom', model='random')
    if d['tpm']:
        _sub(_sub(devices, 'tpm', model='tpm-crb' if d['firmware'] == 'uefi' else 'tpm-tis'),
             'backend', type='emulator', version='2.0')
    return domain


def _os(domain, d):
    os_element = _sub(domain, 'os', firmware='efi' if d['firmware'] == 'uefi' else None)
    _sub(os_element, 'type', 'hvm', arch=d['arch'], machine=d['machine'])
    if d['firmware'] == 'uefi':
        firmware = _sub(os_element, 'firmware')
        _sub(firmware, 'feature', enabled='yes' if d['secure_boot'] else 'no', name='secure-boot')
    for device in d['boot']:
        _sub(os_element, 'boot', dev=device)
    for option in ('kernel', 'initrd', 'cmdline'):
        if d[option] is not None:
            _sub(os_element, option, d[option])


def _cpu(domain, d):
    if d['cpu_mode'] is None:
        return
    if d['cpu_mode'] == 'custom':
        cpu = _sub(domain, 'cpu', mode='custom', match='exact', check='partial')
        _sub(cpu, 'model', d['cpu_model'], fallback='forbid')
    else:
        _sub(domain, 'cpu', mode=d['cpu_mode'])


def _disk(devices, disk, target):
    element = _sub(devices, 'disk', type=disk['type'], device=disk['device'])
    _sub(element, 'driver', name='qemu', type=disk['format'], cache=disk['cache'])
    if disk['type'] == 'volume':
        _sub(element, 'source', pool=disk['pool'], volume=disk['volume'])
    else:
        _sub(element, 'source', **{'file' if disk['type'] == 'file' else 'dev': disk['path']})
    _sub(element, 'target', dev=target, bus=disk['bus'])
    if disk['readonly'] or disk['device'] == 'cdrom':
        _sub(element, 'readonly')


def _interface(devices, interface):
    if interface['network'] is not None:
        element = _sub(devices, 'interface', type='network')
        source = dict(network=interface['network'])
    elif interface['bridge'] is not None:
        element = _sub(devices, 'interface', type='bridge')
        source = dict(bridge=interface['bridge'])
    else:
        element = _sub(devices, 'interface', type='direct')
        source = dict(dev=interface['direct'], mode='bridge')
    if interface['mac'] is not None:
        _sub(element, 'mac', address=interface['mac'].lower())
    _sub(element, 'source', **source)
    _sub(element, 'model', type=interface['model'])


# Options -> resolved definition (reads the host) -----------------------------------

def declares_structure(params):
    """The structured options given (not None), in argument-spec order."""
    return [option for option in STRUCTURED_ARGUMENT_SPEC if params.get(option) is not None]


def structured_domain_spec(client, params):
    """The DomainSpec of the task: from `xml` as given, or from the
    structured options turned into XML (validated against the host)."""
    given = declares_structure(params)
    if not given:
        return DomainSpec(params)
    if params['xml'] is not None:
        raise OperationFailed('xml and the structured options (%s) both declare the domain; give one of them'
                              % ', '.join(given))
    if not params['name']:
        raise OperationFailed('name is required with the structured options (%s)' % ', '.join(given))
    if params['state'] == S.ABSENT:
        raise OperationFailed('state=absent removes the domain; the structured options (%s) declare one: '
                              'leave them out' % ', '.join(given))
    try:
        definition = resolve_definition(client, params)
        text = _xml.to_text(build_domain_xml(definition))
    except DefinitionError as exc:
        raise OperationFailed('Cannot define domain %s: %s' % (params['name'], exc))
    return DomainSpec(dict(params, xml=text))


def resolve_definition(client, params):
    """The definition `build_domain_xml` takes: the options checked, the
    defaults filled in, each disk's type and format read from libvirt."""
    if params['memory'] is None:
        raise DefinitionError('memory is required (a size such as 512M)')
    memory = memory_kib(params['memory'], 'memory')
    max_memory = memory_kib(params['max_memory'], 'max_memory') if params['max_memory'] is not None else memory
    if max_memory < memory:
        raise DefinitionError('max_memory %s is less than memory %s' % (params['max_memory'], params['memory']))
    vcpus = params['vcpus'] if params['vcpus'] is not None else 1
    max_vcpus = params['max_vcpus'] if params['max_vcpus'] is not None else vcpus
    if vcpus < 1 or max_vcpus < vcpus:
        raise DefinitionError('vcpus must be at least 1 and at most max_vcpus (got vcpus=%d, max_vcpus=%d)'
                              % (vcpus, max_vcpus))
    firmware = params['firmware'] or 'bios'
    if firmware not in FIRMWARES:
        raise DefinitionError('unknown firmware %r: use one of %s' % (firmware, ', '.join(FIRMWARES)))
    if params['secure_boot'] and firmware != 'uefi':
        raise DefinitionError('secure_boot needs firmware=uefi')
    if (params['cpu_mode'] == 'custom') != (params['cpu_model'] is not None):
        raise DefinitionError('cpu_model names the CPU model of cpu_mode=custom, and only of it')
    for device in params['boot'] or []:
        if device not in BOOT_DEVICES:
            raise DefinitionError('unknown boot device %r: use %s' % (device, ', '.join(BOOT_DEVICES)))
    if (params['initrd'] is not None or params['cmdline'] is not None) and params['kernel'] is None:
        raise DefinitionError('initrd and cmdline go with kernel (direct kernel boot)')
    if params['serial_log'] is not None and params['serial_console'] is False:
        raise DefinitionError('serial_log is the log of the serial console: it needs serial_console')
    if params['graphics_password'] is not None and params['graphics'] in (None, 'none'):
        raise DefinitionError('graphics_password needs graphics=vnc or graphics=spice')
    definition = dict(
        name=params['name'], virt_type=params['virt_type'] or 'kvm', arch=params['arch'],
        machine=params['machine'], memory_kib=memory, max_memory_kib=max_memory, vcpus=vcpus,
        max_vcpus=max_vcpus, cpu_mode=params['cpu_mode'], cpu_model=params['cpu_model'], firmware=firmware,
        secure_boot=bool(params['secure_boot']), boot=params['boot'] or [], kernel=params['kernel'],
        initrd=params['initrd'], cmdline=params['cmdline'], serial_log=params['serial_log'],
        disks=[_resolve_disk(client, disk, index) for index, disk in enumerate(params['disks'] or [])],
        interfaces=[_resolve_interface(client, interface, index)
                    for index, interface in enumerate(params['interfaces'] or [])],
        graphics=params['graphics'] or 'none', graphics_listen=params['graphics_listen'],
        graphics_password=params['graphics_password'],
        serial_console=_on_unless_false(params['serial_console']), guest_agent=_on_unless_false(params['guest_agent']),
        rng=_on_unless_false(params['rng']), tpm=bool(params['tpm']), description=params['description'],
        tags=_tags(params['tags']))
    _check_host_can(client, definition)
    return definition


def _on_unless_false(value):
    return value is None or value


def _tags(tags):
    for tag in tags or []:
        if not tag.strip() or tag != tag.strip():
            raise DefinitionError('tag %r must be text without leading or trailing white space' % tag)
    return tags or []


def _resolve_disk(client, disk, index):
    what = 'disks[%d]' % index
    by_volume = disk['pool'] is not None or disk['volume'] is not None
    if by_volume == (disk['path'] is not None) or (by_volume and None in (disk['pool'], disk['volume'])):
        raise DefinitionError('%s needs either pool and volume, or path' % what)
    bus = disk['bus'] or ('sata' if disk['device'] == 'cdrom' else 'virtio')
    resolved = dict(device=disk['device'], bus=bus, cache=disk['cache'], readonly=disk['readonly'],
                    pool=disk['pool'], volume=disk['volume'], path=disk['path'])
    if by_volume:
        if client.pool(disk['pool']) is None:
            raise DefinitionError('%s: no storage pool %s at %s' % (what, disk['pool'], client.uri))
        volume = client.volume(disk['pool'], disk['volume'])
        if volume is None:
            raise DefinitionError('%s: no volume %s in pool %s' % (what, disk['volume'], disk['pool']))
        resolved.update(type='volume', format=disk['format'] or _volume_format(client, volume))
        return resolved
    volume = client.volume_by_path(disk['path'])
    if volume is None:
        raise DefinitionError('%s: %s is not a volume of any storage pool at %s (refresh the pool, or create '
                              'the volume with lifecycle.libvirt.volume)' % (what, disk['path'], client.uri))
    volume_type = client.call('read volume %s' % disk['path'], volume.info)[0]
    resolved.update(type='block' if volume_type == libvirt.VIR_STORAGE_VOL_BLOCK else 'file',
                    format=disk['format'] or _volume_format(client, volume))
    return resolved


def _volume_format(client, volume):
    """The disk driver type of `volume`: its format, except that a
    directory pool calls an ISO image (a cloud-init seed) `iso`, which QEMU
    reads as raw."""
    root = _xml.parse_xml(client.call('read volume %s' % volume.name(), volume.XMLDesc, 0), 'volume XML')
    fmt = _xml.attribute_of(root, 'target/format', 'type') or 'raw'
    return 'raw' if fmt == 'iso' else fmt


def _resolve_interface(client, interface, index):
    what = 'interfaces[%d]' % index
    sources = [key for key in ('network', 'bridge', 'direct') if interface[key] is not None]
    if len(sources) != 1:
        raise DefinitionError('%s needs exactly one of network, bridge or direct (got %s)'
                              % (what, ', '.join(sources) or 'none'))
    if interface['network'] is not None and client.network(interface['network']) is None:
        raise DefinitionError('%s: no network %s at %s' % (what, interface['network'], client.uri))
    return dict(interface)


def _check_host_can(client, d):
    """Refuse what the host's domain capabilities say it cannot run."""
    text = client.domain_capabilities('read the domain capabilities of %s (%s)' % (client.uri, d['virt_type']),
                                      None, d['arch'], d['machine'], d['virt_type'])
    capabilities = _xml.parse_xml(text, 'domain capabilities')

    def values(path):
        return [value.text for value in capabilities.iterfind(path)]

    if d['firmware'] == 'uefi':
        if 'efi' not in values("os/enum[@name='firmware']/value"):
            raise DefinitionError('firmware=uefi: this host has no UEFI firmware libvirt can choose for %s '
                                  '(on Debian install the ovmf package)' % d['virt_type'])
        if d['secure_boot'] and 'yes' not in values("os/loader/enum[@name='secure']/value"):
            raise DefinitionError('secure_boot: this host has no secure boot UEFI firmware')
    if d['cpu_mode'] is not None:
        mode = capabilities.find("cpu/mode[@name='%s']" % d['cpu_mode'])
        if mode is None or mode.get('supported') != 'yes':
            raise DefinitionError('cpu_mode=%s is not supported by this host for %s' % (d['cpu_mode'], d['virt_type']))
        if d['cpu_mode'] == 'custom':
            models = values("cpu/mode[@name='custom']/model")
            if d['cpu_model'] not in models:
                raise DefinitionError('cpu_model %s is not one this host knows (%s)' % (
                    d['cpu_model'], ', '.join(sorted(models))))
    if d['tpm'] and 'emulator' not in values("devices/tpm/enum[@name='backendModel']/value"):
        raise DefinitionError('tpm: this host cannot emulate a TPM (on Debian install the swtpm package)')
