"""Pure parts of the client module: hiding secrets of libvirt URIs, and
the one mutation path (`Changes`)."""

import json

import pytest

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
    from ansible.module_utils import basic
    from ansible.module_utils.common.text.converters import to_bytes
    from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import LibvirtModule

    uri = 'qemu+ssh://admin:s3cr3t-pw@kvm01/system?password=t0k3n&keyfile=/k'
    monkeypatch.setattr(basic, '_ANSIBLE_ARGS', to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': {'uri': uri}})))
    monkeypatch.setattr(basic, '_ANSIBLE_PROFILE', 'legacy', raising=False)  # ansible-core >= 2.19
    logged = []
    monkeypatch.setattr(basic.AnsibleModule, 'log', lambda self, msg, log_args=None: logged.append((msg, log_args)))
    module = LibvirtModule(argument_spec={})
    with pytest.raises(SystemExit):
        module.exit_json(changed=False, msg='connected to %s' % uri)
    output = capsys.readouterr().out
    assert logged and all('s3cr3t-pw' not in str(entry) and 't0k3n' not in str(entry) for entry in logged), logged
    assert 's3cr3t-pw' not in output and 't0k3n' not in output and 'keyfile=/k' in output, output
