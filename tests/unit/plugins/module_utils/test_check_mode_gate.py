"""Check mode changes nothing, whatever a converger does: the gate test.

Every mutation a converger makes must go through `Changes.apply`, which
skips it in check mode.  A converger that calls a mutating libvirt method
directly would slip past every review; this test catches it.  Each module
that changes things is run in check mode, the way Ansible runs it (its
`main()`, its argument spec, `LibvirtModule.run`; the modules that have a
batch form in both forms), against libvirt's
in-process test driver `test:///default` - a real libvirt driver, not a
mock - with inputs that WOULD change things.  The driver's whole state
(domains with their live and persistent XML, state, autostart, managed save
and snapshots; pools and their volumes; networks) and the files of the
test's directory must be byte-identical afterwards, and the run must report
`changed: true`, so that the test cannot pass because nothing was asked.
Where the test driver can carry the change out, the same task is then run
for real and must change the observed state: the observation is not blind.

The modules run in this process (not as a subprocess like the integration
tests) because the test driver's state is per process: every connection to
`test:///default` of one process sees the same objects
(`test_connections_of_one_process_share_the_test_drivers_state`), so the
state the module's own connection would change is the state observed here.

What the test driver cannot do, and how it is handled:
- It has no domain capabilities (virConnectGetDomainCapabilities), which the
  domain module reads before it defines a domain.  That one read is answered
  with a minimal document (`_DOMAIN_CAPABILITIES`); every write still goes
  to the driver.
- Stopping or removing a network lists its ports (virNetworkListAllPorts),
  and comparing a declaration with a network's persistent definition reads
  it with a flag (VIR_NETWORK_XML_INACTIVE); the driver has neither, so the
  network cases define and start networks only.
- A zero wipe first reads the volume (a stream download, which the driver
  lacks) to see whether it is all zeros already: the wipe case uses nnsa.
- Migration needs a second host: the destination is a `test:///<file>`
  driver, which each connection parses afresh (private to the module's
  connection, so only the source side can be observed).  That migrate's
  check mode leaves the destination alone too is asserted on the two-host
  rig by tests/integration/test_migrate.py.
- Resize, wipe, migration and undefine with the flags the domain module
  passes (NVRAM, checkpoint metadata) are not implemented by the driver, so
  those cases are not run for real here (`NOT_RUN_FOR_REAL`; the
  integration tests run them).
"""

import io
import json
import os
import uuid
from contextlib import redirect_stdout
from importlib import import_module

import libvirt
import pytest
from ansible.module_utils import basic

URI = 'test:///default'
POOL = 'default-pool'  # the test driver's own dir pool
MODULES = 'ansible_collections.lifecycle.libvirt.plugins.modules.'

# Answer of the one read the test driver lacks (see the module docstring):
# no firmware, CPU mode or TPM choice is asked for by the cases below.
_DOMAIN_CAPABILITIES = """<domainCapabilities>
  <path>/usr/bin/test-emulator</path>
  <domain>test</domain>
  <arch>i686</arch>
  <vcpu max='160'/>
  <os supported='yes'/>
  <devices/>
  <features/>
</domainCapabilities>"""

# A destination host for migrate: its own test driver, with room for a
# stopped domain and nothing in it.
_DESTINATION_NODE = """<node>
  <cpu><mhz>2000</mhz><model>i686</model><active>4</active><max>4</max>
    <nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads></cpu>
  <memory>4194304</memory>
</node>"""


def _quiet(_context, _error):
    pass


libvirt.registerErrorHandler(_quiet, None)


def run_module(monkeypatch, module, check_mode, params):
    """Run lifecycle.libvirt.<module> in this process as Ansible would (its
    arguments where AnsibleModule reads them); return its result."""
    args = dict(params, uri=URI, _ansible_check_mode=check_mode, _ansible_diff=True)
    monkeypatch.setattr(basic, '_ANSIBLE_ARGS', json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode())
    # ansible-core 2.19 reads the arguments' serialization profile beside them; earlier ones have none.
    monkeypatch.setattr(basic, '_ANSIBLE_PROFILE', 'legacy', raising=False)
    printed = io.StringIO()
    with redirect_stdout(printed), pytest.raises(SystemExit):
        import_module(MODULES + module).main()
    result = json.loads(printed.getvalue())
    result.pop('invocation', None)
    return result


# Observing the driver --------------------------------------------------------

_SECURE = libvirt.VIR_DOMAIN_XML_SECURE


def _snapshots(domain):
    return dict((snapshot.getName(), (snapshot.getXMLDesc(0), bool(snapshot.isCurrent(0))))
                for snapshot in domain.listAllSnapshots(0))


def _domain_state(domain):
    persistent = bool(domain.isPersistent())
    return dict(
        live_xml=domain.XMLDesc(_SECURE),
        persistent_xml=domain.XMLDesc(_SECURE | libvirt.VIR_DOMAIN_XML_INACTIVE) if persistent else None,
        state=domain.state(0),  # not info(): the test driver's cpuTime is the clock
        persistent=persistent,
        autostart=bool(domain.autostart()) if persistent else None,
        managed_save=bool(domain.hasManagedSaveImage(0)) if persistent else None,
        snapshots=_snapshots(domain))


def _pool_state(pool):
    return dict(
        xml=pool.XMLDesc(0), active=bool(pool.isActive()), autostart=bool(pool.autostart()),
        persistent=bool(pool.isPersistent()),
        volumes=dict((volume.name(), (volume.XMLDesc(0), volume.info())) for volume in pool.listAllVolumes(0))
        if pool.isActive() else None)


def _network_state(network):
    return dict(xml=network.XMLDesc(0), active=bool(network.isActive()), autostart=bool(network.autostart()),
                persistent=bool(network.isPersistent()))


def _files(directory):
    found = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(root, name)
            found[os.path.relpath(path, directory)] = os.lstat(path).st_size if name in files else 'dir'
    return found


def observe(conn, directory):
    """Everything a converger could change: the driver's objects and the
    files of the test's directory."""
    return dict(
        domains=dict((domain.name(), _domain_state(domain)) for domain in conn.listAllDomains(0)),
        pools=dict((pool.name(), _pool_state(pool)) for pool in conn.listAllStoragePools(0)),
        networks=dict((network.name(), _network_state(network)) for network in conn.listAllNetworks(0)),
        files=_files(directory))


# The objects the cases work on --------------------------------------------------

def _domain_xml(name, memory_kib=65536, disk=None):
    devices = ("<devices><disk type='file' device='disk'><source file='%s'/><target dev='vda' bus='virtio'/>"
               "</disk></devices>" % disk if disk else '')
    return ("<domain type='test'><name>%s</name><memory unit='KiB'>%d</memory><vcpu>1</vcpu>"
            "<os><type>hvm</type></os>%s</domain>" % (name, memory_kib, devices))


def _network_xml(name, bridge, third):
    return ("<network><name>%s</name><bridge name='%s'/><forward mode='nat'/>"
            "<ip address='10.199.%d.1' netmask='255.255.255.0'/></network>" % (name, bridge, third))


class Bed:
    """Objects of one test, named `gate-<hex>-<label>`: a stopped and a
    running domain (the running one with a snapshot), a volume, a pool of
    its own and an inactive network; all removed afterwards."""

    def __init__(self, conn, directory):
        self.conn = conn
        self.directory = str(directory)
        self.tag = uuid.uuid4().hex[:6]
        self.prefix = 'gate-%s-' % self.tag
        self.third = int(self.tag[:2], 16)  # the networks' 10.199.<third>.0/24 and 10.198.<third>.0/24
        conn.defineXML(_domain_xml(self.name('off'), disk=self.path('off.img')))
        running = conn.defineXML(_domain_xml(self.name('on'), disk=self.path('on.img')))
        running.create()
        running.snapshotCreateXML('<domainsnapshot><name>first</name></domainsnapshot>', 0)
        self.volume_pool = conn.storagePoolLookupByName(POOL)
        self.volume_pool.createXML("<volume><name>%s</name><capacity>1048576</capacity></volume>"
                                   % self.name('vol.img'), 0)
        pool = conn.storagePoolDefineXML("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>"
                                         % (self.name('pool'), self.path('pool')), 0)
        pool.create(0)
        conn.networkDefineXML(_network_xml(self.name('net'), 'gate%s0' % self.tag, self.third))

    def name(self, label):
        return self.prefix + label

    def path(self, label):
        return os.path.join(self.directory, label)

    def remove(self):
        for domain in self.conn.listAllDomains(0):
            if domain.name().startswith(self.prefix):
                if domain.isActive():
                    domain.destroy()
                if domain.isPersistent():
                    domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                                         | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)
        for volume in self.volume_pool.listAllVolumes(0):
            if volume.name().startswith(self.prefix):
                volume.delete(0)
        for pool in self.conn.listAllStoragePools(0):
            if pool.name().startswith(self.prefix):
                if pool.isActive():
                    pool.destroy()
                pool.undefine()
        for network in self.conn.listAllNetworks(0):
            if network.name().startswith(self.prefix):
                if network.isActive():
                    network.destroy()
                if network.isPersistent():
                    network.undefine()


# Each case: (module, params of the Bed).
CASES = {
    'domain start': ('domain', lambda bed: dict(name=bed.name('off'), state='running')),
    'domain pause': ('domain', lambda bed: dict(name=bed.name('on'), state='paused')),
    'domain managed save': ('domain', lambda bed: dict(name=bed.name('on'), state='saved')),
    'domain save to a file': ('domain', lambda bed: dict(name=bed.name('on'), state='saved',
                                                         save_file=bed.path('on.save'))),
    'domain stop and undefine': ('domain', lambda bed: dict(name=bed.name('on'), state='absent', force=True,
                                                            shutdown_timeout=0)),
    'domain restarted': ('domain', lambda bed: dict(name=bed.name('on'), state='restarted')),
    'domain made transient': ('domain', lambda bed: dict(name=bed.name('on'), state='running', persistent=False)),
    'domain autostart': ('domain', lambda bed: dict(name=bed.name('off'), state='defined', autostart=True)),
    'domain xml, new': ('domain', lambda bed: dict(xml=_domain_xml(bed.name('new')), state='running')),
    'domain xml, redefined': ('domain', lambda bed: dict(xml=_domain_xml(bed.name('off'), 131072),
                                                         state='defined')),
    'domain structured, new': ('domain', lambda bed: dict(name=bed.name('structured'), memory='64MiB', vcpus=1,
                                                          state='defined')),
    'domain structured, redefined': ('domain', lambda bed: dict(name=bed.name('off'), memory='128MiB', vcpus=2,
                                                                state='defined')),
    'domain batch': ('domain', lambda bed: dict(domains=[dict(name=bed.name('off'), state='running'),
                                                         dict(name=bed.name('on'), state='paused')])),
    'pool new, built and started': ('pool', lambda bed: dict(name=bed.name('pool2'), path=bed.path('pool2'),
                                                             state='active', autostart=True)),
    'pool stop': ('pool', lambda bed: dict(name=bed.name('pool'), state='inactive')),
    'pool remove': ('pool', lambda bed: dict(name=bed.name('pool'), state='absent')),
    'volume create': ('volume', lambda bed: dict(pool=POOL, name=bed.name('new.img'), capacity='1M')),
    'volume resize': ('volume', lambda bed: dict(pool=POOL, name=bed.name('vol.img'), capacity='2M')),
    'volume delete': ('volume', lambda bed: dict(pool=POOL, name=bed.name('vol.img'), state='absent')),
    'volume clone': ('volume', lambda bed: dict(pool=POOL, name=bed.name('clone.img'),
                                                clone_from=bed.name('vol.img'))),
    'volume overlay': ('volume', lambda bed: dict(pool=POOL, name=bed.name('overlay.qcow2'), format='qcow2',
                                                  backing_volume=bed.name('vol.img'))),
    'volume wiped and deleted': ('volume', lambda bed: dict(pool=POOL, name=bed.name('vol.img'), state='absent',
                                                            wipe='nnsa')),
    'volume batch': ('volume', lambda bed: dict(pool=POOL, capacity='1M', volumes=[
        dict(name=bed.name('new1.img')), dict(name=bed.name('new2.img'), capacity='2M')])),
    'wipe': ('wipe', lambda bed: dict(pool=POOL, name=bed.name('vol.img'), algorithm='nnsa')),
    'wipe batch': ('wipe', lambda bed: dict(pool=POOL, algorithm='nnsa', volumes=[dict(name=bed.name('vol.img'))])),
    'snapshot create': ('snapshot', lambda bed: dict(domain=bed.name('on'), name='second')),
    'snapshot revert': ('snapshot', lambda bed: dict(domain=bed.name('on'), name='first', state='reverted',
                                                     revert_state='defined')),
    'snapshot delete': ('snapshot', lambda bed: dict(domain=bed.name('on'), name='first', state='absent')),
    'snapshot batch': ('snapshot', lambda bed: dict(name='batch', snapshots=[
        dict(domain=bed.name('on')), dict(domain=bed.name('off'))])),
    'snapshot retention': ('snapshot', lambda bed: dict(domain=bed.name('on'), keep=1)),
    'network new': ('network', lambda bed: dict(name=bed.name('net2'), forward_mode='nat',
                                                bridge='gate%s1' % bed.tag,
                                                ipv4=dict(address='10.198.%d.1/24' % bed.third))),
    'network start': ('network', lambda bed: dict(name=bed.name('net'), state='active')),
    'network autostart': ('network', lambda bed: dict(name=bed.name('net'), state='present', autostart=True)),
    'migrate offline': ('migrate', lambda bed: dict(name=bed.name('off'), offline=True,
                                                    dest_uri='test://' + bed.path('destination.xml'))),
}


# Cases whose real run is not tried here, and why: the test driver lacks the
# operation, or it leaves nothing the driver shows.
NOT_RUN_FOR_REAL = {
    'domain stop and undefine': 'undefine with the NVRAM and checkpoint flags is not implemented',
    'domain made transient': 'undefine with the NVRAM and checkpoint flags is not implemented',
    'domain restarted': 'a reboot leaves no trace in what the driver shows',
    'volume resize': 'resize is not implemented',
    'volume wiped and deleted': 'wipe is not implemented',
    'wipe': 'wipe is not implemented',
    'wipe batch': 'wipe is not implemented',
    'migrate offline': 'migration is not implemented',
}


@pytest.fixture
def conn():
    connection = libvirt.open(URI)
    yield connection
    connection.close()


@pytest.fixture
def bed(conn, tmp_path, monkeypatch):
    monkeypatch.setattr(libvirt.virConnect, 'getDomainCapabilities',
                        lambda _conn, *_args: _DOMAIN_CAPABILITIES)
    (tmp_path / 'destination.xml').write_text(_DESTINATION_NODE)
    made = Bed(conn, tmp_path)
    yield made
    made.remove()


def test_connections_of_one_process_share_the_test_drivers_state(conn):
    """The premise of the gate test: what one connection to test:///default
    defines, another connection of this process sees (as it would through
    a module's own connection)."""
    name = 'gate-%s-shared' % uuid.uuid4().hex[:6]
    other = libvirt.open(URI)
    try:
        other.defineXML(_domain_xml(name))
        assert conn.lookupByName(name).name() == name
        conn.lookupByName(name).undefine()
        assert name not in [domain.name() for domain in other.listAllDomains(0)]
    finally:
        other.close()


def test_every_module_that_changes_things_has_cases():
    modules_dir = os.path.dirname(import_module(MODULES + 'domain').__file__)
    modules = set(name[:-3] for name in os.listdir(modules_dir) if name.endswith('.py') and name != '__init__.py')
    assert set(module for module, _params_of in CASES.values()) == set(
        module for module in modules if not module.endswith('_info'))
    assert set(NOT_RUN_FOR_REAL) <= set(CASES)


@pytest.mark.parametrize('case', sorted(CASES))
def test_check_mode_changes_nothing(case, conn, bed, monkeypatch):
    module, params_of = CASES[case]
    params = params_of(bed)
    before = observe(conn, bed.directory)

    check = run_module(monkeypatch, module, True, params)

    assert check.get('failed') is not True, check
    assert check['changed'] is True, check
    assert observe(conn, bed.directory) == before
    if case not in NOT_RUN_FOR_REAL:
        real = run_module(monkeypatch, module, False, params)
        assert real.get('failed') is not True, real
        assert real['changed'] is True, real
        assert observe(conn, bed.directory) != before
