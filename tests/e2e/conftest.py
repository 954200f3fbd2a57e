"""End-to-end tests (`make e2e`): a real distribution guest, provisioned the
way a user would, on the real libvirtd.  Slow under TCG (minutes), hence
not part of `make test`.  Every object is named with a unique `lltest-`
prefix and removed afterwards, also when the test fails."""

import os
import sys
import uuid

import libvirt
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'testbed'))

import testbed  # noqa: E402


def _quiet(_context, _error):
    pass


libvirt.registerErrorHandler(_quiet, None)


@pytest.fixture(scope='session')
def conn():
    connection = libvirt.open(testbed.URI)
    with testbed.test_session(connection):
        yield connection
    connection.close()


@pytest.fixture
def prefix(conn):
    """A unique name prefix; the domains, networks and volumes named with it
    are removed afterwards."""
    unique = '%s%s-' % (testbed.TEST_PREFIX, uuid.uuid4().hex[:6])
    yield unique
    testbed.sweep(conn, unique)
