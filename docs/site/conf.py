# Sphinx configuration of the collection's HTML site (`make docs`).
# build.py assembles the sources: the collection reference antsibull-docs
# writes (collection/), the Markdown guides of docs/ (guides/) and links to
# Ansible's documentation (ansible.rst), under docs/site/index.rst.  No intersphinx: these machines reach
# no documentation server, and a site that links out needs none.

project = 'lifecycle.libvirt'
copyright = 'lifecycle.libvirt contributors'
title = 'lifecycle.libvirt'
html_short_title = 'lifecycle.libvirt'

extensions = ['sphinx_antsibull_ext', 'myst_parser']
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
# The guides' headings become anchors, so a link to a section resolves.
myst_heading_anchors = 3

pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'

html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

default_role = 'any'
nitpicky = True
