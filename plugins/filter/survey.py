# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Inputs as an AWX/AAP survey gives them: a text field holds a string where
a role wants a list, a textarea holds YAML or JSON where it wants data.
Extra vars outrank every variable a play can set, so a role reads its inputs
through these filters instead of rebinding them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

import yaml

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types

_SEPARATORS = re.compile(r'[,\n]')


def survey_list(value):
    """A list as it is; a string split at commas and line breaks, each item
    stripped, blank ones dropped."""
    if value is None:
        return []
    if isinstance(value, string_types):
        return [item.strip() for item in _SEPARATORS.split(to_text(value)) if item.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise AnsibleFilterError('survey_list expects a list or a comma- or newline-separated string, got %s: %r'
                             % (type(value).__name__, value))


def survey_data(value):
    """Structured data as it is; a string read as YAML (JSON is YAML too).
    Blank text is None."""
    if not isinstance(value, string_types):
        return value
    try:
        return yaml.safe_load(to_text(value))
    except yaml.YAMLError as error:
        raise AnsibleFilterError('survey_data expects YAML or JSON text: %s' % error)


class FilterModule(object):
    def filters(self):
        return {'survey_list': survey_list, 'survey_data': survey_data}
