# Unit tests import the collection as Ansible does: from ansible_collections.
import os
import sys

_COLLECTIONS = os.path.join(os.path.dirname(__file__), '..', '..', '.build', 'collections')
sys.path.insert(0, os.path.abspath(_COLLECTIONS))
