"""Build the collection's HTML site: `python docs/site/build.py DEST`.

antsibull-docs writes the reference of the modules and roles (as installed on
ANSIBLE_COLLECTIONS_PATH) as RST, the Markdown guides of docs/ join them, and
Sphinx turns both into HTML in DEST.  Any warning fails the build, so a broken
link or a page missing from the table of contents does not go unnoticed.
"""

import os
import shutil
import subprocess
import sys
import tempfile

SITE = os.path.dirname(os.path.abspath(__file__))
DOCS = os.path.dirname(SITE)
BIN = os.path.dirname(sys.executable)


def assemble(source):
    """Lay out the Sphinx sources in `source`."""
    reference = os.path.join(source, 'collection')
    os.makedirs(reference)
    os.chmod(source, 0o755)
    os.chmod(reference, 0o755)  # antsibull-docs refuses a directory others can write to
    subprocess.run([os.path.join(BIN, 'antsibull-docs'), 'collection', '--use-current', '--squash-hierarchy',
                    '--fail-on-error', '--dest-dir', reference, 'lifecycle.libvirt'],
                   check=True, stdout=subprocess.DEVNULL)
    guides = os.path.join(source, 'guides')
    os.makedirs(guides)
    for name in sorted(os.listdir(DOCS)):
        if name.endswith('.md'):
            shutil.copy(os.path.join(DOCS, name), guides)
    for name in ('index.rst', 'ansible.rst'):
        shutil.copy(os.path.join(SITE, name), source)


def build(dest):
    with tempfile.TemporaryDirectory(prefix='lifecycle-libvirt-docs-') as source:
        assemble(source)
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        subprocess.run([os.path.join(BIN, 'sphinx-build'), '-q', '-W', '--keep-going', '-b', 'html',
                        '-c', SITE, source, dest], check=True)


if __name__ == '__main__':
    build(os.path.abspath(sys.argv[1]))
