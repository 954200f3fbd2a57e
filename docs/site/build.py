"""Build the collection's HTML site: `python docs/site/build.py DEST`.

antsibull-docs writes the reference of the modules, plugins and roles (as
installed on ANSIBLE_COLLECTIONS_PATH) as RST, the Markdown guides of docs/
join them, and Sphinx turns both into HTML in DEST.  Any warning fails the
build, so a broken link or a page missing from the table of contents does not
go unnoticed.  References into Ansible's own documentation (ansible.builtin
plugins, configuration settings) cannot be resolved offline: they point at a
generated page of links to docs.ansible.com instead.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

SITE = os.path.dirname(os.path.abspath(__file__))
DOCS = os.path.dirname(SITE)
BIN = os.path.dirname(sys.executable)
ANSIBLE_DOCS = 'https://docs.ansible.com/projects/ansible/latest/'
# Labels of Ansible's docsite the generated pages use, and their pages.
ANSIBLE_LABELS = {
    'common_return_values': ('Return values common to all modules', 'reference_appendices/common_return_values.html'),
    'ansible_configuration_settings': ('Ansible configuration settings', 'reference_appendices/config.html'),
}
BUILTIN_LABEL = re.compile(r'ansible_collections\.ansible\.builtin\.(\w+)_(module|\w+)$')


def ansible_links(reference):
    """RST of a page that defines every label and environment variable the
    generated reference uses but does not define, as links to Ansible's
    documentation.  An unknown label stays unresolved (and fails the build)."""
    text = ''
    for name in sorted(os.listdir(reference)):
        with open(os.path.join(reference, name)) as handle:
            text += handle.read()
    labels = set(re.findall(r':ref:`(?:[^`<]*<)?([^`<>]+)>?`', text)) - set(re.findall(r'^\.\. _([^:]+):', text, re.M))
    envvars = {name.replace('\\', '') for name in re.findall(r':envvar:`([^`]+)`', text)}
    envvars -= set(re.findall(r'^\.\. envvar:: (\S+)', text, re.M))
    lines = [':orphan:', '', "Ansible's own documentation", '===========================', '',
             'The reference refers to these parts of Ansible\'s documentation. The site is built offline,',
             'so they are links, not cross-references.', '']
    for label in sorted(labels):
        builtin = BUILTIN_LABEL.match(label)
        if builtin:
            title, page = 'ansible.builtin.%s' % builtin.group(1), 'collections/ansible/builtin/%s_%s.html' % builtin.groups()
        elif label in ANSIBLE_LABELS:
            title, page = ANSIBLE_LABELS[label]
        else:
            continue
        lines += ['.. _%s:' % label, '', title, '-' * len(title), '', '`%s <%s%s>`_' % (title, ANSIBLE_DOCS, page), '']
    for name in sorted(envvars):
        lines += ['.. envvar:: %s' % name, '',
                  '   `%s <%sreference_appendices/config.html#envvar-%s>`_ in Ansible\'s configuration settings.'
                  % (name, ANSIBLE_DOCS, name), '']
    return '\n'.join(lines)


def assemble(source):
    """Lay out the Sphinx sources in `source`."""
    reference = os.path.join(source, 'collection')
    os.makedirs(reference)
    os.chmod(source, 0o755)
    os.chmod(reference, 0o755)  # antsibull-docs refuses a directory others can write to
    subprocess.run([os.path.join(BIN, 'antsibull-docs'), 'collection', '--use-current', '--squash-hierarchy',
                    '--fail-on-error', '--dest-dir', reference, 'lifecycle.libvirt'],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(source, 'ansible.rst'), 'w') as handle:
        handle.write(ansible_links(reference))
    guides = os.path.join(source, 'guides')
    os.makedirs(guides)
    for name in sorted(os.listdir(DOCS)):
        if name.endswith('.md'):
            shutil.copy(os.path.join(DOCS, name), guides)
    shutil.copy(os.path.join(SITE, 'index.rst'), source)


def build(dest):
    with tempfile.TemporaryDirectory(prefix='lifecycle-libvirt-docs-') as source:
        assemble(source)
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        subprocess.run([os.path.join(BIN, 'sphinx-build'), '-q', '-W', '--keep-going', '-b', 'html',
                        '-c', SITE, source, dest], check=True)


if __name__ == '__main__':
    build(os.path.abspath(sys.argv[1]))
