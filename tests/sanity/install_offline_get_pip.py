"""Put offline_get_pip.py where ansible-test looks for its cached get-pip."""

import os
import shutil

from ansible_test._internal.python_requirements import get_venv_packages


class _AnyPython:
    version = None  # ansible-test pins one pip for every version it knows


def main():
    version = get_venv_packages(_AnyPython())['pip']
    target = os.path.expanduser('~/.ansible/test/cache/get_pip_%s.py' % version.replace('.', '_'))
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'offline_get_pip.py')
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if not os.path.exists(target) or open(target).read() != open(source).read():
        shutil.copyfile(source, target)


if __name__ == '__main__':
    main()
