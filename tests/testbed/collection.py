"""The collection as users get it: built by ansible-galaxy and installed
from the tarball, with the ansible-galaxy of the running Python's venv."""

import glob
import os
import subprocess
import sys

REPO_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.dirname(sys.executable)


def build_and_install(workdir):
    """Build the collection into `workdir`/build and install the tarball into
    `workdir`/collections; return that collections path."""
    build_dir = os.path.join(workdir, 'build')
    install_dir = os.path.join(workdir, 'collections')
    subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', REPO_DIR, '--output-path', build_dir],
                   check=True, capture_output=True)
    [tarball] = glob.glob(os.path.join(build_dir, 'lifecycle-libvirt-*.tar.gz'))
    subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '--force', tarball,
                    '-p', install_dir], check=True, capture_output=True)
    return install_dir


def installed_path(collections):
    """Where the collection sits under a collections path."""
    return os.path.join(collections, 'ansible_collections', 'lifecycle', 'libvirt')
