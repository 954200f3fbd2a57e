"""Bad input fails with one clear msg, no traceback, and changes nothing."""

import os

import pytest

from conftest import run_module

XXE = """<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<domain type='qemu'><name>NAME</name><memory unit='MiB'>64</memory>
<os><type>hvm</type></os><description>&secret;</description></domain>"""

MINIMAL = ("<domain type='qemu'><name>NAME</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
           "<os><type arch='x86_64' machine='pc'>hvm</type></os>%s</domain>")

# (id, module parameters, text the msg must contain); NAME is replaced by a test name.
CASES = [
    ('malformed-xml', dict(xml='<domain><name>NAME</name>'), 'Invalid domain XML: xml is not well-formed'),
    ('external-entity', dict(xml=XXE), 'must not contain a DOCTYPE'),
    ('empty-xml', dict(xml='   '), 'xml is empty'),
    ('not-a-domain', dict(xml="<network><name>NAME</name></network>"), 'root element is <network>'),
    ('xml-without-name', dict(xml="<domain type='qemu'><memory>65536</memory></domain>"), 'it has no <name>'),
    ('name-disagrees', dict(name='NAME-other', xml=MINIMAL % ''), 'disagrees with the <name>'),
    ('unknown-domain', dict(name='NAME', state='running'), 'does not exist; xml is required to create it'),
    ('transient-defined', dict(xml=MINIMAL % '', persistent=False, state='defined'), 'needs a persistent domain'),
    ('bad-uri', dict(name='NAME', uri='bogus:///system'), 'Failed to connect to bogus:///system'),
    ('unreachable-uri', dict(name='NAME', uri='qemu+tcp://127.0.0.1:1/system'),
     'Failed to connect to qemu+tcp://127.0.0.1:1/system'),
    ('missing-emulator', dict(xml=MINIMAL % '<devices><emulator>/nonexistent/qemu-kvm</emulator></devices>',
                              state='defined'), 'Failed to define domain NAME'),
    ('schema-invalid', dict(xml=MINIMAL.replace('64</memory>', 'lots</memory>') % '', state='defined'),
     'Failed to define domain NAME'),
    ('negative-timeout', dict(xml=MINIMAL % '', shutdown_timeout=-1), 'shutdown_timeout must be zero or more'),
    ('unknown-state', dict(name='NAME', state='hibernated'), 'value of state must be one of'),
    ('transient-autostart', dict(xml=MINIMAL % '', persistent=False, autostart=True), 'autostart needs a persistent'),
    ('save-file-absent', dict(name='NAME', state='absent', save_file='/tmp/x.save'), 'save_file is not used'),
    ('neither-name-nor-xml', dict(state='running'), 'one of the following is required: name, xml'),
    ('transient-managed-save', dict(xml=MINIMAL % '', persistent=False, state='saved'),
     'managed save needs a persistent domain'),
]


@pytest.mark.parametrize('params,expected', [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_fails_clearly_and_changes_nothing(conn, params, expected):
    name = 'lltest-bad-input'
    params = {k: v.replace('NAME', name) if isinstance(v, str) else v for k, v in params.items()}

    def ours():  # other test sessions may define domains meanwhile
        return sorted(d.name() for d in conn.listAllDomains(0) if d.name().startswith(name))

    before = ours()
    for check in (True, False):
        result = run_module('domain', check=check, **params)
        assert result.get('failed') is True, result
        assert expected.replace('NAME', name) in result['msg'], result['msg']
        assert 'root:' not in result['msg']  # the entity was never expanded
    assert ours() == before


def test_removing_a_running_domain_needs_force(test_guest):
    g = test_guest
    run_module('domain', xml=g.xml, state='running')
    result = run_module('domain', name=g.name, state='absent')
    assert result['failed'] is True and 'force=true' in result['msg']
    assert g.state() == 'running'


def test_unknown_domain_in_domain_info():
    result = run_module('domain_info', name='lltest-no-such-domain')
    assert result['failed'] is True
    assert result['msg'] == 'Failed to find domain lltest-no-such-domain: no domain with that name at qemu:///system'


def test_a_step_libvirt_refuses_is_not_a_change(test_guest):
    """The domain is defined, but its disk is gone: libvirt refuses to start it."""
    g = test_guest
    xml = g.xml.replace(g.disk_path, os.path.join(g.workdir, 'missing.qcow2'))
    assert run_module('domain', xml=xml, state='defined')['changed'] is True
    check = run_module('domain', check=True, name=g.name, state='running')
    assert check['changed'] is True and check['actions'] == ['start']  # check mode predicts what it would try
    result = run_module('domain', name=g.name, state='running')
    assert result['failed'] is True and 'Failed to start domain %s' % g.name in result['msg']
    assert result['changed'] is False and result['actions'] == []
    assert g.state() == 'defined'
