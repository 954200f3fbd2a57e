"""A domain declared with structured options (memory, vcpus, disks, ...)
instead of XML: defined, converged, predicted by check mode, diffed, and
refused with a clear message - nothing created - when it cannot be."""

import uuid

import libvirt
import pytest
from lxml import etree

import testbed
from conftest import run_module

TAGS = '{https://github.com/lifecycle-libvirt/lifecycle.libvirt/xmlns/tags/1.0}'


class Names:
    def __init__(self, conn):
        self.conn = conn
        self.prefix = '%s%s-' % (testbed.TEST_PREFIX, uuid.uuid4().hex[:6])
        self.domain = self.prefix + 'vm'
        self.network = self.prefix + 'net'
        self.pool = conn.storagePoolLookupByName('default')

    def volume(self, label, fmt='qcow2'):
        name = '%s%s.%s' % (self.prefix, label, fmt)
        return self.pool.createXML("<volume><name>%s</name><capacity unit='MiB'>8</capacity>"
                                   "<target><format type='%s'/></target></volume>" % (name, fmt), 0)

    def define_network(self):
        self.conn.networkDefineXML("<network><name>%s</name><bridge name='lltest%s'/></network>"
                                   % (self.network, self.prefix[len(testbed.TEST_PREFIX):-1]))

    def stored(self):
        return etree.fromstring(self.conn.lookupByName(self.domain).XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))

    def exists(self):
        return self.domain in [d.name() for d in self.conn.listAllDomains(0)]


@pytest.fixture
def names(conn):
    made = Names(conn)
    yield made
    testbed.sweep(conn, made.prefix)


def structured(names, domain_type, **overrides):
    root = names.volume('root')
    seed = names.volume('seed', 'raw')
    names.define_network()
    params = dict(name=names.domain, state='defined', virt_type=domain_type, memory='256M', vcpus=1,
                  machine='pc', cpu_mode='custom', cpu_model='qemu64', boot=['hd', 'cdrom'],
                  disks=[dict(pool='default', volume=root.name(), cache='none'),
                         dict(path=seed.path(), device='cdrom')],
                  interfaces=[dict(network=names.network, mac='52:54:00:0A:0B:0C')],
                  graphics='vnc', graphics_listen='127.0.0.1', graphics_password='s3cret',
                  description='structured guest', tags=['web', 'tier1'])
    params.update(overrides)
    return params, root, seed


def run_twice(params):
    """Check mode, then the real run; returns both results."""
    return run_module('domain', check=True, **params), run_module('domain', **params)


def test_structured_options_define_the_domain_and_converge(names, domain_type):
    params, root, seed = structured(names, domain_type)
    check, real = run_twice(params)
    assert check['changed'] is True and check['actions'] == ['define'] == real['actions']
    assert real['changed'] is True and real['state'] == 'defined'
    assert check['diff'] == real['diff'] and 's3cret' not in str(real)
    assert '<currentMemory unit="KiB">262144</currentMemory>' in real['diff'][1]['after']

    stored = names.stored()
    assert stored.get('type') == domain_type
    assert stored.findtext('currentMemory') == '262144' and stored.findtext('vcpu') == '1'
    assert stored.find('os/type').get('machine').startswith('pc-i440fx')
    assert [b.get('dev') for b in stored.findall('os/boot')] == ['hd', 'cdrom']
    assert stored.find('cpu').get('mode') == 'custom' and stored.findtext('cpu/model') == 'qemu64'
    first, cdrom = stored.findall('devices/disk')
    assert first.find('source').attrib == {'pool': 'default', 'volume': root.name()}
    assert first.find('driver').get('type') == 'qcow2' and first.find('driver').get('cache') == 'none'
    assert first.find('target').attrib == {'dev': 'vda', 'bus': 'virtio'}
    assert cdrom.get('device') == 'cdrom' and cdrom.find('source').get('file') == seed.path()
    assert cdrom.find('driver').get('type') == 'raw' and cdrom.find('readonly') is not None
    interface = stored.find('devices/interface')
    assert interface.find('source').get('network') == names.network
    assert interface.find('mac').get('address') == '52:54:00:0a:0b:0c'
    assert stored.find("devices/channel/target[@name='org.qemu.guest_agent.0']") is not None
    assert stored.find('devices/graphics').get('passwd') == 's3cret'
    assert stored.find('devices/graphics/listen').get('address') == '127.0.0.1'
    assert stored.find('devices/rng') is not None and stored.find('devices/console') is not None
    assert stored.findtext('description') == 'structured guest'
    assert [t.text for t in stored.iter(TAGS + 'tag')] == ['web', 'tier1']

    again_check, again = run_twice(params)
    assert again_check['changed'] is False and again['changed'] is False, again['differences']
    assert again['differences'] == [] and again_check['diff'] == again['diff']


def test_a_changed_option_is_predicted_then_applied_and_generated_macs_stay(names, domain_type):
    params, _root, _seed = structured(names, domain_type)
    params['interfaces'] = [dict(network=names.network)]  # no MAC: libvirt generates one
    run_module('domain', **params)
    mac = names.stored().find('devices/interface/mac').get('address')

    params.update(memory='384M', vcpus=2, guest_agent=False, graphics='none', graphics_password=None,
                  graphics_listen=None)
    check, real = run_twice(params)
    assert check['changed'] is True and check['differences'] == real['differences']
    assert any('currentMemory' in line for line in real['differences']), real['differences']
    assert check['diff'] == real['diff']
    stored = names.stored()
    assert stored.findtext('currentMemory') == str(384 * 1024) and stored.findtext('vcpu') == '2'
    assert stored.find("devices/channel") is None and stored.find('devices/graphics') is None
    assert stored.find('devices/interface/mac').get('address') == mac  # not regenerated
    assert run_module('domain', **params)['changed'] is False


def _bad(names, case):
    """Options that are wrong in one way each."""
    return {
        'xml_and_structured': (dict(xml='<domain type="qemu"><name>%s</name></domain>' % names.domain, name=None),
                               'xml and the structured options'),
        'unknown_firmware': (dict(firmware='coreboot'), "unknown firmware 'coreboot'"),
        'missing_pool': (dict(disks=[dict(pool=names.prefix + 'nopool', volume='x')]), 'no storage pool'),
        'missing_volume': (dict(disks=[dict(pool='default', volume=names.prefix + 'none.qcow2')]), 'no volume'),
        'path_not_a_volume': (dict(disks=[dict(path='/nonexistent/%s.img' % names.prefix)]),
                              'is not a volume of any storage pool'),
        'missing_network': (dict(interfaces=[dict(network=names.prefix + 'nonet')]), 'no network'),
        'two_sources': (dict(interfaces=[dict(network=names.network, bridge='br0')]), 'exactly one of'),
        'unknown_cpu_model': (dict(cpu_model='NoSuchCPU'), 'cpu_model NoSuchCPU is not one this host knows'),
        'no_memory': (dict(memory=None), 'memory is required'),
        'odd_memory': (dict(memory='1000'), 'whole number of KiB'),
        'secure_boot_on_bios': (dict(secure_boot=True), 'secure_boot needs firmware=uefi'),
        'vcpus_over_max': (dict(vcpus=4, max_vcpus=2), 'at most max_vcpus'),
        'blank_tag': (dict(tags=[' web']), 'without leading or trailing white space'),
    }[case]


@pytest.mark.parametrize('case', ['xml_and_structured', 'unknown_firmware', 'missing_pool', 'missing_volume',
                                  'path_not_a_volume', 'missing_network', 'two_sources', 'unknown_cpu_model',
                                  'no_memory', 'odd_memory', 'secure_boot_on_bios', 'vcpus_over_max',
                                  'blank_tag'])
def test_bad_structured_options_fail_clearly_and_create_nothing(names, domain_type, case):
    params, _root, _seed = structured(names, domain_type)
    overrides, message = _bad(names, case)
    params.update(overrides)
    for check in (True, False):
        result = run_module('domain', check=check, **params)
        assert result.get('failed') is True, result
        assert message in result['msg'], result['msg']
        assert 's3cret' not in result['msg']
        assert not names.exists()


def test_uefi_and_tpm_follow_what_the_host_can(names, conn, domain_type):
    """The host's domain capabilities decide: defined when it has the
    firmware / TPM emulator, else refused with what to install."""
    capabilities = etree.fromstring(conn.getDomainCapabilities(None, None, 'q35', domain_type, 0))
    has_efi = 'efi' in [v.text for v in capabilities.iterfind("os/enum[@name='firmware']/value")]
    has_swtpm = 'emulator' in [v.text for v in capabilities.iterfind("devices/tpm/enum[@name='backendModel']/value")]
    for overrides, available, refusal, present in (
            (dict(firmware='uefi'), has_efi, 'no UEFI firmware', lambda s: s.find('os').get('firmware') == 'efi'),
            (dict(tpm=True), has_swtpm, 'cannot emulate a TPM', lambda s: s.find('devices/tpm') is not None)):
        params, _root, _seed = structured(names, domain_type, machine='q35', **overrides)
        result = run_module('domain', **params)
        if available:
            assert result['changed'] is True and present(names.stored())
            conn.lookupByName(names.domain).undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        else:
            assert result.get('failed') is True and refusal in result['msg'], result
            assert not names.exists()
        testbed.sweep(conn, names.prefix)
