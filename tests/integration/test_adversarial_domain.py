"""The domain module under hostile input, faults, interruptions and
concurrent runs.  Each case asserts what libvirt and the files hold
afterwards, and that a re-run converges."""

import json

import ansible_module
from conftest import URI, run_module

PASSWORD, QUERY_SECRET = 'hunter2-pw', 'tok-9f3a'


def _secret_uri(uri=URI):
    """`uri` with a password in its userinfo and one in its query."""
    scheme, rest = uri.split('://', 1)
    return '%s+unix://admin:%s@%s?password=%s' % (scheme.split('+')[0], PASSWORD, rest, QUERY_SECRET)


def _run_raw(module, **params):
    """Run a module; return its result and its whole output (stdout with
    the `invocation` echo, and stderr)."""
    params.setdefault('uri', URI)
    return ansible_module.run_module(ansible_module.OUR_MODULES + module, params)


def test_secrets_in_the_uri_appear_nowhere_in_the_output(test_guest):
    g = test_guest
    uri = _secret_uri()
    runs = [_run_raw('domain', uri=uri, xml=g.xml, state='defined'),
            _run_raw('domain', uri=uri, name=g.name, state='defined'),
            _run_raw('domain_info', uri=uri, name=g.name + '-missing'),
            _run_raw('domain', uri=uri.replace('/system', '/nosuch'), name=g.name)]
    for result, output in runs:
        assert PASSWORD not in output and QUERY_SECRET not in output, output
        assert PASSWORD not in json.dumps(result) and QUERY_SECRET not in json.dumps(result)
    (defined, _), (again, _), (missing, _), (bad_uri, _) = runs
    assert defined['changed'] is True and g.state() == 'defined'
    assert again['changed'] is False
    assert missing['failed'] and 'qemu+unix://admin:********@/system?password=********' in missing['msg']
    assert bad_uri['failed'] and 'Failed to connect to qemu+unix://admin:********@' in bad_uri['msg']
