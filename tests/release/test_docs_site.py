"""The HTML site `make docs` builds (docs/site/build.py): the collection's
reference from antsibull-docs plus the guides of docs/."""

import os
import subprocess
import sys
import urllib.parse

import pytest
from lxml import html

from conftest import REPO


def names(directory, ext):
    return sorted(name[:-len(ext)] for name in os.listdir(os.path.join(REPO, directory)) if name.endswith(ext))


# Filters are documented in one YAML file each; other plugins in their code.
PLUGINS = [('filter', name) for name in names('plugins/filter', '.yml')] + \
          [('inventory', name) for name in names('plugins/inventory', '.py')]
MODULES = names('plugins/modules', '.py')
ROLES = sorted(os.listdir(os.path.join(REPO, 'roles')))
GUIDES = names('docs', '.md')


@pytest.fixture(scope='module')
def site(installed_collections, tmp_path_factory):
    dest = tmp_path_factory.mktemp('site') / 'html'
    run = subprocess.run([sys.executable, os.path.join(REPO, 'docs', 'site', 'build.py'), str(dest)], check=False,
                         capture_output=True, text=True,
                         env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=installed_collections,
                                  PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH']))
    assert run.returncode == 0, run.stdout + run.stderr
    return dest


def page(site, path):
    with open(site / path, 'rb') as handle:
        return html.fromstring(handle.read())


def local_links(site, path):
    """(file, fragment) of every link of the page that stays on the site."""
    for href in page(site, path).xpath('//a/@href'):
        parts = urllib.parse.urlsplit(href)
        if parts.scheme or parts.netloc:
            continue
        if parts.path.startswith('/'):  # the theme's link to the site's root
            target = parts.path.lstrip('/')
        else:
            target = os.path.normpath(os.path.join(os.path.dirname(path), parts.path)) if parts.path else path
        if target == '' or target.endswith('/'):
            target += 'index.html'
        yield target, parts.fragment


def test_module_page_renders(site):
    doc = page(site, 'collection/domain_module.html')
    assert doc.findtext('.//title').startswith('lifecycle.libvirt.domain module')
    # Every option of the argument spec is a row of the parameters table.
    parameters = set(doc.xpath('//*[starts-with(@id, "ansible-collections-lifecycle-libvirt-domain-module-parameter-")]'
                               '/@id'))
    for option in ('uri', 'name', 'xml', 'state', 'shutdown-timeout', 'force', 'autostart'):
        assert 'ansible-collections-lifecycle-libvirt-domain-module-parameter-' + option in parameters
    text = doc.text_content()
    for heading in ('Synopsis', 'Requirements', 'Parameters', 'Attributes', 'Examples', 'Return Values'):
        assert heading in text
    assert 'lifecycle.libvirt.domain:' in ''.join(doc.xpath('//div[contains(@class, "highlight")]//text()'))


def test_module_page_links_resolve(site):
    for target, fragment in local_links(site, 'collection/domain_module.html'):
        assert (site / target).is_file(), target
        if fragment:
            assert page(site, target).xpath('//*[@id=$id]', id=fragment), (target, fragment)


def test_index_lists_every_plugin_role_and_guide(site):
    links = {link[0] for link in local_links(site, 'index.html')}
    links |= {link[0] for link in local_links(site, 'collection/index.html')}
    assert {'collection/%s_module.html' % name for name in MODULES} <= links
    assert {'collection/%s_%s.html' % (name, kind) for kind, name in PLUGINS} <= links
    assert {'collection/%s_role.html' % name for name in ROLES} <= links
    assert {'guides/%s.html' % name for name in GUIDES} <= links


def test_lint_collection_docs():
    """antsibull-docs' own linter over the plugin and role docs and the extra docs."""
    run = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'antsibull-docs'), 'lint-collection-docs',
                          '--plugin-docs', '--validate-collection-refs', 'all', '--disallow-unknown-collection-refs',
                          REPO], check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
