"""Release checks: the collection as users and AWX/AAP get it - installed from
its tarball, introspected for an execution environment, documented as a site.
No libvirt daemon is needed."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'testbed'))

import collection  # noqa: E402


@pytest.fixture(scope='session')
def installed_collections(tmp_path_factory):
    """A collections path holding the collection installed from its tarball."""
    return collection.build_and_install(str(tmp_path_factory.mktemp('galaxy')))
