"""Offline stand-in for ansible-test's pip bootstrap script.

ansible-test downloads get-pip.py from ci-files.testing.ansible.com to put pip
into the virtual environments of its sanity tests.  Hosts that reach only a
package registry cannot fetch it; this script does the same job with the
interpreter's own ensurepip and then installs the requested pip from the
registry.  `make sanity` places it in ansible-test's cache.
"""

import subprocess
import sys

# get-pip.py's own switches, which pip install does not know.
_GET_PIP_ONLY = ('--no-setuptools', '--no-wheel')

subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + [a for a in sys.argv[1:] if a not in _GET_PIP_ONLY])
