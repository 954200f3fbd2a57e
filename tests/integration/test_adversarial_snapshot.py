"""lifecycle.libvirt.snapshot under hostile input: names and overlay paths
that would write outside what the user named, and requests libvirt refuses
only after being asked.  Each case checks libvirt's state and the files
afterwards, that check mode predicts the same outcome, and that running the
task again changes nothing."""

import os
import stat

import libvirt
import guest

from conftest import run_module
from test_snapshot_lifecycle import define, disk_source
from test_snapshot_lifecycle import snapshot_names as names
from test_adversarial_decommission import changed, start_playbook


def refused_alike(message, **params):
    """Check mode and two real runs fail with the same message and change nothing."""
    results = [run_module('snapshot', check=True, **params), run_module('snapshot', **params),
               run_module('snapshot', **params)]
    for result in results:
        assert result.get('failed') and message in result['msg'], result
        assert result['msg'].startswith('Failed to') and result.get('changed', False) is False, result
    assert len(set(result['msg'] for result in results)) == 1
    return results[0]


def test_names_that_leave_the_directory_or_cut_a_string(test_guest):
    g = test_guest
    define(g)
    images = os.path.dirname(g.disk_path)
    for name in ('../lltest-escape', 'a/b', '..', 'nul\0byte', ''):
        refused_alike('must not be empty or contain', domain=g.name, name=name, disk_only=True)
    refused_alike('must not be empty or contain', domain=g.name, name_prefix='../', keep=2)
    assert names(g) == [] and disk_source(g) == g.disk_path
    # The pool directory is shared with other test sessions: look at ours.
    assert [f for f in os.listdir(images) if f.startswith(g.name)] == [os.path.basename(g.disk_path)]
    assert not os.path.exists(os.path.join(os.path.dirname(images), 'lltest-escape'))


def test_overlay_onto_a_symlink_device_node_or_existing_file(test_guest, tmp_path):
    g = test_guest
    define(g)
    aim = tmp_path / 'aim.qcow2'
    link = tmp_path / 'link.qcow2'
    link.symlink_to(aim)  # dangling: libvirt would create the file where it points
    existing = tmp_path / 'precious.img'
    existing.write_bytes(b'precious data')
    cases = [(str(link), 'is a symbolic link'), ('/dev/null', 'is a device node'),
             (str(existing), 'already exists'), (str(tmp_path / 'nodir' / 'x.qcow2'), 'does not exist')]
    for path, message in cases:
        refused_alike(message, domain=g.name, name='ext', disk_only=True, disks=[dict(target='vda', file=path)])
    assert not aim.exists() and os.path.islink(link)
    assert stat.S_ISCHR(os.stat('/dev/null').st_mode)
    assert existing.read_bytes() == b'precious data'
    assert names(g) == [] and disk_source(g) == g.disk_path


def test_default_overlay_name_taken(test_guest):
    g = test_guest
    define(g)
    taken = os.path.splitext(g.disk_path)[0] + '.nightly'
    with open(taken, 'wb') as handle:
        handle.write(b'someone else')
    try:
        refused_alike('%s already exists' % taken, domain=g.name, name='nightly', disk_only=True)
        with open(taken, 'rb') as handle:
            assert handle.read() == b'someone else'
        assert names(g) == [] and disk_source(g) == g.disk_path
    finally:
        os.unlink(taken)


def test_domain_without_disks(conn, make_guest, domain_type):
    g = make_guest()
    name = g.name + '-nodisk'
    conn.defineXML(guest.domain_xml(name, domain_type=domain_type))
    for disk_only in (False, True):
        refused_alike('no writable disk to snapshot', domain=name, name='s', disk_only=disk_only)
    assert conn.lookupByName(name).snapshotNum(0) == 0


def test_external_snapshot_under_an_internal_parent(test_guest):
    g = test_guest
    define(g)
    assert run_module('snapshot', domain=g.name, name='inner')['changed']
    assert run_module('snapshot', domain=g.name, name='outer', disk_only=True)['changed']
    overlay = disk_source(g)
    refused_alike('outer is an external snapshot whose parent inner is internal',
                  domain=g.name, name='outer', state='absent')
    assert names(g) == ['inner', 'outer'] and disk_source(g) == overlay and os.path.exists(overlay)
    # Retention deletes the parent first, and then libvirt accepts the child.
    check = run_module('snapshot', check=True, domain=g.name, state='absent', keep=0)
    real = run_module('snapshot', domain=g.name, state='absent', keep=0)
    assert check['deleted'] == real['deleted'] == ['inner', 'outer'] and real['changed']
    assert names(g) == [] and disk_source(g) == g.disk_path and not os.path.exists(overlay)
    assert run_module('snapshot', domain=g.name, state='absent', keep=0)['changed'] is False


def test_revert_refuses_to_discard_a_managed_save_image(test_guest):
    g = test_guest
    assert run_module('domain', xml=g.xml, state='running')['changed']
    g.wait_ready()
    assert run_module('snapshot', domain=g.name, name='mem')['changed']
    assert run_module('domain', name=g.name, state='saved')['changed']
    # Revert needs the snapshot named; without it nothing is guessed.
    refused_alike('needs the name of the snapshot', domain=g.name, state='reverted')
    refused_alike('has a managed save image', domain=g.name, name='mem', state='reverted')
    assert g.state() == 'saved' and g.domain().hasManagedSaveImage(0)
    assert g.domain().snapshotCurrent(0).getName() == 'mem'


def test_a_step_libvirt_refuses_is_not_a_change(test_guest):
    g = test_guest
    define(g)
    # Nothing can be created in /proc: only libvirt finds out, while acting.
    params = dict(domain=g.name, name='ext', disk_only=True, disks=[dict(target='vda', file='/proc/lltest-ov')])
    for run in ('first', 'again'):
        result = run_module('snapshot', **params)
        assert result['failed'] and result['changed'] is False and result['actions'] == [], (run, result)
        assert result['msg'].startswith('Failed to create snapshot ext of domain %s' % g.name)
    assert names(g) == [] and disk_source(g) == g.disk_path


def test_yaml_typed_names_stay_strings(test_guest):
    g = test_guest
    define(g)
    for name in ('true', 'no', '0600', '1e3'):
        assert run_module('snapshot', domain=g.name, name=name)['snapshot']['name'] == name
        assert run_module('snapshot', domain=g.name, name=name)['changed'] is False
    assert names(g) == sorted(['true', 'no', '0600', '1e3'])
    assert isinstance(g.domain().snapshotLookupByName('0600', 0), libvirt.virDomainSnapshot)


def test_role_options_given_as_strings(test_guest):
    g = test_guest
    define(g)

    def role(*options):
        process = start_playbook('snapshot_role.yml', '-e', 'snapshot_name=nightly', *options, snapshot_vms=[g.name])
        output = process.communicate(timeout=300)[0]
        return process.returncode, output

    # -e key=value hands the role strings: "true" and "false", not booleans.
    code, output = role('-e', 'snapshot_disk_only=true', '-e', 'snapshot_quiesce=false')
    assert code == 0 and changed(output) == 1, output
    assert names(g) == ['nightly'] and disk_source(g) != g.disk_path
    code, output = role('-e', 'snapshot_disk_only=true', '-e', 'snapshot_quiesce=false')
    assert code == 0 and changed(output) == 0, output
    code, output = role('-e', 'snapshot_disk_only=false', '-e', 'snapshot_quiesce=true')
    assert code != 0 and 'true needs snapshot_disk_only: true' in output, output
    code, output = role('-e', 'snapshot_quiesce=maybe')
    assert code != 0 and 'snapshot_quiesce must be auto, true or false' in output, output
    assert names(g) == ['nightly']
