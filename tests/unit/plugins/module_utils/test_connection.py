"""The client module's own logic: hiding secrets of libvirt URIs, retrying
transient refusals, the per-object lock, and the one mutation path
(`Changes`).  libvirt is only used through its in-process test driver."""

import json
import os
import stat
import uuid

import libvirt
import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.lifecycle.libvirt.plugins.module_utils import _connection
from ansible_collections.lifecycle.libvirt.plugins.module_utils._changes import Changes
from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import mask_uri, uri_secrets


@pytest.mark.parametrize('uri, masked', [
    ('qemu:///system', 'qemu:///system'),
    ('qemu+ssh://admin@kvm01/system', 'qemu+ssh://admin@kvm01/system'),
    ('qemu+ssh://admin:s3cr%40t@kvm01:2222/system?keyfile=/k',
     'qemu+ssh://admin:********@kvm01:2222/system?keyfile=/k'),
    ('qemu+tcp://:only-pw@kvm01/system', 'qemu+tcp://:********@kvm01/system'),
    ('qemu+libssh2://u@h/system?known_hosts=/kh&password=hunter2&sshauth=password',
     'qemu+libssh2://u@h/system?known_hosts=/kh&password=********&sshauth=password'),
    ('esx://root@esx/?no_verify=1;passwd=x;PWD=y#frag', 'esx://root@esx/?no_verify=1;passwd=********;PWD=********#frag'),
    ('qemu+ssh://u:p@q@h/system?token=t', 'qemu+ssh://u:********@h/system?token=********'),
    ('', ''),
    (None, None),
])
def test_mask_uri_hides_passwords_and_keeps_the_rest(uri, masked):
    assert mask_uri(uri) == masked


def test_uri_secrets_lists_each_secret_as_written_and_decoded():
    assert uri_secrets('qemu+ssh://admin:s3cr%40t@kvm01/system?password=p%2Fw&keyfile=/k') == {
        's3cr%40t', 's3cr@t', 'p%2Fw', 'p/w'}
    assert uri_secrets('qemu+ssh://admin@kvm01/system?keyfile=/k') == set()
    assert uri_secrets(None) == set()


def _refused():
    raise RuntimeError('libvirt refused')


def test_an_action_counts_only_once_it_succeeded():
    changes = Changes(check_mode=False)
    assert changes.apply('first', lambda: 'done') == 'done'
    with pytest.raises(RuntimeError):
        changes.apply('refused', _refused)
    assert changes.actions == ['first']
    refused_only = Changes(check_mode=False)
    with pytest.raises(RuntimeError):
        refused_only.apply('refused', _refused)
    assert not refused_only.changed and refused_only.actions == []


def test_check_mode_counts_the_prediction_and_runs_nothing():
    changes = Changes(check_mode=True)
    assert changes.apply('refused', _refused) is None
    assert changes.changed and changes.actions == ['refused']


def test_the_logged_and_returned_arguments_hide_uri_secrets(monkeypatch, capsys):
    """AnsibleModule logs its arguments (syslog/journal) while it is built,
    and echoes them in `invocation`: neither may hold the URI's password."""
    uri = 'qemu+ssh://admin:s3cr3t-pw@kvm01/system?password=t0k3n&keyfile=/k'
    monkeypatch.setattr(basic, '_ANSIBLE_ARGS', to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': {'uri': uri}})))
    monkeypatch.setattr(basic, '_ANSIBLE_PROFILE', 'legacy', raising=False)  # ansible-core >= 2.19
    logged = []
    monkeypatch.setattr(basic.AnsibleModule, 'log', lambda self, msg, log_args=None: logged.append((msg, log_args)))
    module = _connection.LibvirtModule(argument_spec={})
    with pytest.raises(SystemExit):
        module.exit_json(changed=False, msg='connected to %s' % uri)
    output = capsys.readouterr().out
    assert logged and all('s3cr3t-pw' not in str(entry) and 't0k3n' not in str(entry) for entry in logged), logged
    assert 's3cr3t-pw' not in output and 't0k3n' not in output and 'keyfile=/k' in output, output


def _libvirt_error(code, message):
    error = libvirt.libvirtError(message)
    error.err = (code, 0, message, 2, None, None, None, 0, 0)  # as virGetLastError() gives it
    return error


def test_the_client_retries_only_transient_refusals_a_bounded_number_of_times(monkeypatch):
    """libvirt's "cannot acquire state change lock" means "not now": the call
    is repeated; any other refusal stands at once."""
    monkeypatch.setattr(_connection, 'TRANSIENT_PAUSE_SECONDS', 0)
    client = _connection.LibvirtClient('test:///default')  # libvirt's in-process test driver
    calls = []

    def busy_then_done(outcomes):
        def operation():
            calls.append(1)
            outcome = outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        return operation

    lock_timeout = _libvirt_error(libvirt.VIR_ERR_OPERATION_TIMEOUT, 'cannot acquire state change lock')
    assert client.call('start it', busy_then_done([lock_timeout, lock_timeout, 'started'])) == 'started'
    assert len(calls) == 3
    del calls[:]
    with pytest.raises(_connection.OperationFailed) as failure:
        client.call('start it', busy_then_done([lock_timeout] * 5))
    assert len(calls) == _connection.TRANSIENT_ATTEMPTS
    assert failure.value.libvirt_code == libvirt.VIR_ERR_OPERATION_TIMEOUT
    assert str(failure.value) == 'Failed to start it: cannot acquire state change lock'
    del calls[:]
    invalid = _libvirt_error(libvirt.VIR_ERR_OPERATION_INVALID, 'domain is already running')
    with pytest.raises(_connection.OperationFailed):
        client.call('start it', busy_then_done([invalid, 'started']))
    assert len(calls) == 1
    client.close()


def test_runs_converging_one_object_take_turns():
    """The per-object lock: a second holder waits, and gives up after its
    timeout with a message naming the object; other objects are free."""
    first, second = _connection.LibvirtClient('test:///default'), _connection.LibvirtClient('test:///default')
    name = 'unit-%s' % uuid.uuid4().hex[:8]
    with first.exclusive('domain', name):
        with pytest.raises(_connection.OperationFailed) as refused:
            with second.exclusive('domain', name, timeout=0.5):
                pass
        assert 'Failed to lock domain %s: another run has been converging it' % name in str(refused.value)
        with second.exclusive('domain', name + '-other', timeout=0.5):
            pass
        lock_dir = _connection._lock_dir()
        assert stat.S_IMODE(os.lstat(lock_dir).st_mode) == 0o700
    with second.exclusive('domain', name, timeout=0.5):
        pass
    first.close()
    second.close()
