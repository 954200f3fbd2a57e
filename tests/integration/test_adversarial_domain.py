"""The domain module under hostile input, faults, interruptions and
concurrent runs.  Each case asserts what libvirt and the files hold
afterwards, and that a re-run converges."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import libvirt
import pytest

import ansible_module
from conftest import URI, run_module

PASSWORD, QUERY_SECRET = 'hunter2-pw', 'tok-9f3a'
PRECIOUS = b'precious data the module must not overwrite\n'


def _secret_uri(uri=URI):
    """`uri` with a password in its userinfo and one in its query."""
    scheme, rest = uri.split('://', 1)
    return '%s+unix://admin:%s@%s?password=%s' % (scheme.split('+')[0], PASSWORD, rest, QUERY_SECRET)


def _run_raw(module, **params):
    """Run a module; return its result and its whole output (stdout with
    the `invocation` echo, and stderr)."""
    params.setdefault('uri', URI)
    return ansible_module.run_module(ansible_module.OUR_MODULES + module, params)


class ModuleProcess:
    """One module run in the background, as Ansible would start it."""

    def __init__(self, module, **params):
        params.setdefault('uri', URI)
        with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': params}, handle)
        self.args_file = handle.name
        self.process = subprocess.Popen(
            [sys.executable, '-m', ansible_module.OUR_MODULES + module, self.args_file],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=ansible_module.COLLECTIONS))

    def result(self, timeout=300):
        stdout, stderr = self.process.communicate(timeout=timeout)
        os.unlink(self.args_file)
        assert 'Traceback' not in stdout + stderr, stdout + stderr
        return json.loads(stdout)

    def terminate(self):
        """SIGTERM, as AWX's cancel or an async timeout sends it."""
        self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=60)
        os.unlink(self.args_file)


def _fail_both_modes(params, expected):
    """Check mode and the real run fail alike, with `expected` in msg."""
    for check in (True, False):
        result = run_module('domain', check=check, **params)
        assert result.get('failed') is True and not result.get('changed'), result
        assert expected in result['msg'], result['msg']
    return result


def _file_state(path):
    """What is at `path`, without following a symlink."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if os.path.islink(path):
        return ('link', os.readlink(path))
    if os.path.isfile(path):
        with open(path, 'rb') as handle:
            return ('file', handle.read(), info.st_mode & 0o7777)
    return ('other', info.st_mode, info.st_ino)


@pytest.fixture
def running_guest(test_guest):
    """A test guest whose OS is up (it answers ACPI and its shell)."""
    run_module('domain', xml=test_guest.xml, state='running')
    test_guest.wait_ready()
    return test_guest


@pytest.fixture
def defined_guest(test_guest):
    g = test_guest
    assert run_module('domain', xml=g.xml, state='defined')['changed'] is True
    return g


def _precious(g, name='precious.txt'):
    path = os.path.join(g.workdir, name)
    with open(path, 'wb') as handle:
        handle.write(PRECIOUS)
    os.chmod(path, 0o640)
    return path


# --- save_file: never overwrite what is not an earlier image of this domain ---

def _save_target(g, kind):
    """A save_file path of `kind` in the guest's work directory; returns
    (path, what protects)."""
    precious = _precious(g)
    if kind == 'symlink-to-file':
        path = os.path.join(g.workdir, 'link.save')
        os.symlink(precious, path)
        return path, 'is a symbolic link'
    if kind == 'dangling-symlink':
        path = os.path.join(g.workdir, 'dangling.save')
        os.symlink(os.path.join(g.workdir, 'created-through-link.save'), path)
        return path, 'is a symbolic link'
    if kind == 'device-node':
        return '/dev/null', 'is a character device, not a regular file'
    if kind == 'directory':
        path = os.path.join(g.workdir, 'a-directory')
        os.mkdir(path)
        return path, 'is a directory, not a regular file'
    if kind == 'regular-file':
        return precious, 'exists and is not a libvirt save image'
    if kind == 'dotdot-path':
        os.mkdir(os.path.join(g.workdir, 'sub'))
        return os.path.join(g.workdir, 'sub', '..', 'precious.txt'), 'exists and is not a libvirt save image'
    raise AssertionError(kind)


SAVE_TARGETS = ['symlink-to-file', 'dangling-symlink', 'device-node', 'directory', 'regular-file', 'dotdot-path']


@pytest.mark.parametrize('kind', SAVE_TARGETS)
def test_save_file_refuses_what_is_not_a_save_image(defined_guest, kind):
    g = defined_guest
    path, expected = _save_target(g, kind)
    before = {p: _file_state(p) for p in os.listdir(g.workdir)}
    devnull = os.stat('/dev/null')
    _fail_both_modes(dict(name=g.name, state='saved', save_file=path), 'Refusing to save domain %s' % g.name)
    result = run_module('domain', name=g.name, state='saved', save_file=path)
    assert expected in result['msg']
    assert g.state() == 'defined' and not g.domain().isActive()
    assert {p: _file_state(p) for p in os.listdir(g.workdir)} == before
    assert os.stat('/dev/null').st_rdev == devnull.st_rdev and os.path.exists('/dev/null')
    assert run_module('domain', name=g.name, state='defined')['changed'] is False


def test_save_file_refuses_another_domains_image(make_guest):
    first, second = make_guest('first'), make_guest('second')
    image = os.path.join(first.workdir, 'first.save')
    for g in (first, second):
        run_module('domain', xml=g.xml, state='defined')
    saved = run_module('domain', name=first.name, state='saved', save_file=image)
    assert saved['actions'] == ['start_paused', 'save_to_file'] and first.state() == 'defined'
    image_before = _file_state(image)
    result = _fail_both_modes(dict(name=second.name, state='saved', save_file=image),
                              'holds the saved memory of another domain (%s' % first.name)
    assert not result.get('changed') and second.state() == 'defined'
    assert _file_state(image) == image_before
    assert run_module('domain', name=first.name, state='saved', save_file=image)['changed'] is False


def test_save_file_is_private_even_over_an_older_world_readable_image(defined_guest):
    g = defined_guest
    image = os.path.join(g.workdir, 'guest.save')
    first = run_module('domain', name=g.name, state='saved', save_file=image)
    assert first['changed'] is True and os.stat(image).st_mode & 0o777 == 0o600
    with open(image, 'rb') as handle:
        assert handle.read(16) == b'LibvirtQemudSave'
    os.chmod(image, 0o644)  # an image left readable by an older version, or by hand
    run_module('domain', name=g.name, state='paused', save_file=image)  # restore it paused ...
    resaved = run_module('domain', name=g.name, state='saved', save_file=image)  # ... and save over it
    assert resaved['actions'] == ['save_to_file'] and g.state() == 'defined'
    assert os.stat(image).st_mode & 0o777 == 0o600 and os.stat(image).st_uid == 0
    assert run_module('domain', name=g.name, state='saved', save_file=image)['changed'] is False


def test_stale_save_file_settles_and_is_never_restored(running_guest):
    """Saved, restored and shut down (state=defined): the image is then older
    than the disk, so the next runs neither restore it again nor resume it."""
    g = running_guest
    image = os.path.join(g.workdir, 'guest.save')
    assert run_module('domain', name=g.name, state='saved', save_file=image)['changed'] is True
    params = dict(name=g.name, state='defined', save_file=image, shutdown_timeout=60)
    check = run_module('domain', check=True, **params)
    settled = run_module('domain', **params)
    assert settled['actions'] == check['actions'] == ['restore', 'shutdown'] and g.state() == 'defined'
    assert os.stat(g.disk_path).st_mtime_ns > os.stat(image).st_mtime_ns  # the guest wrote to it since
    for check_mode in (True, False):
        again = run_module('domain', check=check_mode, **params)
        assert again['changed'] is False and again['actions'] == [], again
    result = _fail_both_modes(dict(params, state='running'), 'the image is older than its disk %s' % g.disk_path)
    assert 'Refusing to restore domain %s from %s' % (g.name, image) in result['msg']
    assert g.state() == 'defined' and os.path.exists(image)


# --- names, XML and values as templates and surveys produce them ---

@pytest.mark.parametrize('where', ['xml', 'name'])
def test_padded_names_are_refused(conn, test_guest, where):
    g = test_guest
    padded = '  %s  ' % g.name
    params = dict(xml=g.xml.replace('<name>%s</name>' % g.name, '<name>%s</name>' % padded)) if where == 'xml' \
        else dict(name=padded, state='defined')
    result = _fail_both_modes(params, 'starts or ends with white space')
    assert repr(padded) in result['msg']
    names = [d.name() for d in conn.listAllDomains(0)]
    assert padded not in names and g.name not in names


def test_check_mode_refuses_a_redefinition_libvirt_refuses(defined_guest):
    g = defined_guest
    before = g.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    second_disk = ("<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                   "<source file='%s/other.img'/><target dev='vda' bus='virtio'/></disk>" % g.workdir)
    bad = g.xml.replace('</devices>', second_disk + '</devices>')
    _fail_both_modes(dict(xml=bad, state='defined'), "target 'vda' duplicated")
    assert g.domain().XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) == before
    assert run_module('domain', xml=g.xml, state='defined')['changed'] is False


def test_survey_strings_for_booleans_and_numbers(defined_guest):
    """AWX surveys and extra vars send "yes", "true" and "60" as strings."""
    g = defined_guest
    params = dict(name=g.name, state='defined', autostart='yes', persistent='true', force='no',
                  shutdown_timeout='60')
    first = run_module('domain', **params)
    assert first['actions'] == ['set_autostart'] and g.domain().autostart() == 1
    assert run_module('domain', **{**params, 'autostart': True})['changed'] is False
    bad = run_module('domain', **{**params, 'shutdown_timeout': 'a minute'})
    assert bad['failed'] and 'shutdown_timeout' in bad['msg'] and g.domain().autostart() == 1


# --- URIs: secrets, bad ones, the environment's default ---

def test_secrets_in_the_uri_appear_nowhere_in_the_output(test_guest):
    g = test_guest
    uri = _secret_uri()
    runs = [_run_raw('domain', uri=uri, xml=g.xml, state='defined'),
            _run_raw('domain', uri=uri, name=g.name, state='defined'),
            _run_raw('domain_info', uri=uri, name=g.name + '-missing'),
            _run_raw('domain', uri=uri.replace('/system', '/nosuch'), name=g.name)]
    for _result, output in runs:
        assert PASSWORD not in output and QUERY_SECRET not in output, output
    defined, again, missing, bad_uri = [result for result, _output in runs]
    assert defined['changed'] is True and g.state() == 'defined'
    assert again['changed'] is False
    assert missing['failed'] and 'qemu+unix://admin:********@/system?password=********' in missing['msg']
    assert bad_uri['failed'] and 'Failed to connect to qemu+unix://admin:********@' in bad_uri['msg']


@pytest.mark.parametrize('uri', ['', 'not a uri at all', 'qemu:///system/../../etc', 'qemu+ssh://[::1/system'])
def test_bad_uris_fail_clearly_and_change_nothing(conn, uri):
    name = 'lltest-bad-uri'
    result, output = _run_raw('domain', uri=uri, name=name, state='defined')
    assert result['failed'] is True and 'Traceback' not in output
    # '' is libvirt's "the default hypervisor": it connects, and finds no such domain.
    assert result['msg'].startswith('Failed to connect to %s:' % uri if uri else
                                    'domain %s does not exist' % name), result['msg']
    assert name not in [d.name() for d in conn.listAllDomains(0)]


def test_uri_falls_back_to_libvirt_default_uri(monkeypatch, defined_guest):
    g = defined_guest
    monkeypatch.setenv('LIBVIRT_DEFAULT_URI', _secret_uri())
    params = {'name': g.name, 'state': 'defined'}
    result, output = ansible_module.run_module(ansible_module.OUR_MODULES + 'domain', params)
    assert result['changed'] is False and result['state'] == 'defined'
    assert PASSWORD not in output and QUERY_SECRET not in output
    monkeypatch.setenv('LIBVIRT_DEFAULT_URI', 'bogus:///nowhere')
    result, output = ansible_module.run_module(ansible_module.OUR_MODULES + 'domain', params)
    assert result['failed'] and 'Failed to connect to bogus:///nowhere' in result['msg']
    assert g.state() == 'defined'


# --- concurrent runs and interrupted runs ---

def _converge_concurrently(params, runs=4):
    processes = [ModuleProcess('domain', **params) for _run in range(runs)]
    return [p.result() for p in processes]


def test_concurrent_runs_all_reach_the_declared_state(test_guest):
    g = test_guest
    base = dict(xml=g.xml, shutdown_timeout=90)
    booted = None
    for state in ('defined', 'running', 'paused', 'running', 'saved', 'running'):
        results = _converge_concurrently(dict(base, state=state))
        for result in results:
            assert not result.get('failed'), result
            assert result['state'] == state
        assert sum(r['changed'] for r in results) == 1, results  # one did it, the others found it done
        assert g.state() == state
        if state == 'running' and booted is None:
            booted = g.wait_ready()  # its OS is up before it is paused and saved
    with g.shell() as shell:  # the first boot, continued through pause and save
        assert shell.run('cat /data/boots').strip() == '1'
    results = _converge_concurrently(dict(base, state='defined'))
    assert [r.get('failed') for r in results] == [None] * 4, results
    assert sum(r['changed'] for r in results) == 1 and g.state() == 'defined'
    assert run_module('domain', **dict(base, state='defined'))['changed'] is False


def test_a_domain_changed_by_someone_else_mid_run_is_replanned(make_guest):
    """virsh (or another controller, which our lock does not cover) undefines
    the domain while the module waits for it to shut down: the module's
    undefine is refused because the domain is gone meanwhile, so it observes
    again, finds it absent as declared, and succeeds instead of failing."""
    g = make_guest(noacpi=True)  # it ignores the power button: the wait lasts shutdown_timeout
    run_module('domain', xml=g.xml, state='running')
    g.wait_ready()
    run = ModuleProcess('domain', name=g.name, state='absent', force=True, shutdown_timeout=8)
    time.sleep(3)
    g.domain().undefineFlags(0)  # the outsider: it goes on running, now transient
    result = run.result()
    assert not result.get('failed'), result
    assert result['previous_state'] == 'running' and result['state'] == 'absent'
    assert result['actions'] == ['shutdown'] and result['changed'] is True  # the refused undefine is not listed
    assert g.domain() is None
    assert run_module('domain', name=g.name, state='absent')['changed'] is False


def _wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.05)


def test_sigterm_mid_shutdown_then_rerun_converges(running_guest):
    g = running_guest
    params = dict(name=g.name, state='defined', shutdown_timeout=60)
    killed = ModuleProcess('domain', **params)
    time.sleep(1.0)  # the shutdown was requested; the guest is powering off
    killed.terminate()
    rerun = run_module('domain', **params)
    assert not rerun.get('failed'), rerun
    assert rerun['state'] == 'defined' and g.state() == 'defined'
    assert run_module('domain', **params)['changed'] is False


def test_sigterm_mid_save_then_rerun_converges(running_guest):
    g = running_guest
    image = os.path.join(g.workdir, 'guest.save')
    params = dict(name=g.name, state='saved', save_file=image)
    killed = ModuleProcess('domain', **params)
    _wait_for(lambda: os.path.exists(image))  # libvirt is writing it
    killed.terminate()
    rerun = run_module('domain', **params)  # waits for or finishes what libvirt was doing
    assert not rerun.get('failed'), rerun
    assert rerun['state'] == 'saved' and not g.domain().isActive()
    with open(image, 'rb') as handle:
        assert handle.read(16) == b'LibvirtQemudSave'
    assert os.stat(image).st_mode & 0o777 == 0o600
    assert run_module('domain', **params)['changed'] is False
    restored = run_module('domain', **{**params, 'state': 'running'})
    assert restored['actions'] == ['restore']
    with g.shell() as shell:  # the same boot, continued: nothing was lost
        assert shell.run('cat /data/boots').strip() == '1'
