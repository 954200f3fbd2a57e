"""The survey filters: list and structured inputs as AWX/AAP surveys give them."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.lifecycle.libvirt.plugins.filter.survey import FilterModule, survey_data, survey_list


@pytest.mark.parametrize('value, expected', [
    (['web01', 'web02'], ['web01', 'web02']),
    (('web01',), ['web01']),
    ([], []),
    (None, []),
    ('', []),
    ('web01', ['web01']),
    ('web01,web02', ['web01', 'web02']),
    (' web01 , web02 ,', ['web01', 'web02']),
    ('web01\nweb02\n', ['web01', 'web02']),
    ('web01\r\nweb02\r\n', ['web01', 'web02']),
    ('web01,\n\nweb02', ['web01', 'web02']),
])
def test_survey_list(value, expected):
    assert survey_list(value) == expected


@pytest.mark.parametrize('value', [3, {'web01': 1}, True])
def test_survey_list_refuses_what_is_no_list(value):
    with pytest.raises(AnsibleFilterError, match='comma- or newline-separated string'):
        survey_list(value)


@pytest.mark.parametrize('value, expected', [
    ([{'name': 'web01'}], [{'name': 'web01'}]),
    ({'live': True}, {'live': True}),
    ('[{"name": "web01", "memory_mib": 256}]', [{'name': 'web01', 'memory_mib': 256}]),
    ('- name: web01\n  memory_mib: 256\n- name: web02\n', [{'name': 'web01', 'memory_mib': 256}, {'name': 'web02'}]),
    ('live: true\nunsafe: true', {'live': True, 'unsafe': True}),
    ('', None),
    ('  \n', None),
    (None, None),
])
def test_survey_data(value, expected):
    assert survey_data(value) == expected


def test_survey_data_names_bad_text():
    with pytest.raises(AnsibleFilterError, match='YAML or JSON text'):
        survey_data('- name: [web01')


def test_filters_are_registered_under_their_names():
    assert FilterModule().filters() == {'survey_list': survey_list, 'survey_data': survey_data}
