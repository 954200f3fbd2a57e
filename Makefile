# lifecycle.libvirt - the two commands are `make demo` and `make test`.
# Both run `make setup` first, which prepares everything on a fresh
# Debian/Ubuntu box (packages, .venv, libvirt daemons, pool, test guest).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE := .cache
# The collection must sit at ansible_collections/lifecycle/libvirt for
# Ansible to load it; a symlink does for running it, ansible-test wants a copy.
COLLECTIONS := $(CURDIR)/.build/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/lifecycle/libvirt
SANITY_TREE := $(or $(TMPDIR),/tmp)/lifecycle.libvirt-sanity-$(shell echo $(CURDIR) | md5sum | cut -c1-8)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup host venv guest cores test sanity lint unit release-checks docs release-notes integration molecule demo bench build clean

setup: host venv guest $(COLLECTION_LINK)

host:
	tests/testbed/setup-host.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements/dev.txt requirements/runtime.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements/dev.txt
	touch $@

guest: venv
	$(BIN)/python tests/testbed/testbed.py prepare

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn $(CURDIR) $@

test: setup
	$(MAKE) --no-print-directory sanity lint unit release-checks integration molecule

# Sanity and unit tests run on every ansible-core this Python (3.11) supports,
# each in its own venv made from requirements/core-X.Y.txt; the integration
# tests and molecule run on .venv's ansible-core.  Newer cores need Python 3.12.
CORES := 2.17 2.18 2.19
CORE_VENVS := $(foreach core,$(CORES),.build/core-$(core)/.installed)

cores: $(CORE_VENVS)

.build/core-%/.installed: requirements/core-%.txt requirements/runtime.txt
	test -x .build/core-$*/bin/python || $(PYTHON) -m venv .build/core-$*
	.build/core-$*/bin/pip install -q --upgrade pip
	.build/core-$*/bin/pip install -q -r requirements/core-$*.txt
	touch $@

# ansible-test wants the collection as a copy (one per core, so their
# tests/output never mix) and fetches a pip bootstrap script these machines
# cannot reach: install_offline_get_pip.py puts a stand-in in its cache.
sanity: $(COLLECTION_LINK) $(CORE_VENVS)
	set -e; for core in $(CORES); do \
	    echo "== ansible-test sanity, ansible-core $$core"; \
	    tree=$(SANITY_TREE)-$$core/ansible_collections/lifecycle/libvirt; \
	    .build/core-$$core/bin/python tests/sanity/install_offline_get_pip.py; \
	    mkdir -p $$tree; \
	    rsync -a --delete --exclude=.venv --exclude=.cache --exclude=.build --exclude=.git --exclude=.ansible --exclude=tests/output ./ $$tree/; \
	    (cd $$tree && PATH=$(CURDIR)/.build/core-$$core/bin:$$PATH ansible-test sanity --python 3.11 --requirements \
	        --color no --skip-test shebang); \
	done

unit: $(COLLECTION_LINK) $(CORE_VENVS)
	set -e; for core in $(CORES); do \
	    echo "== unit tests, ansible-core $$core"; \
	    .build/core-$$core/bin/pytest -q tests/unit; \
	done

# The collection as a release: the execution-environment dependencies
# (ansible-builder introspect/create), the docs site and antsibull-docs' lint.
release-checks:
	$(BIN)/pytest -q tests/release

# The HTML site: the modules' and roles' reference (antsibull-docs) and the
# guides of docs/, in .build/docs.
docs: $(COLLECTION_LINK)
	$(BIN)/python docs/site/build.py .build/docs

integration:
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=15 tests/integration

# The roles, each in its scenario on the real daemon (extensions/molecule/).
# Scenarios hold the test-session lock shared, like pytest sessions do, so a
# concurrent session's sweep of leftovers never takes their guests.
molecule:
	flock -s /tmp/lifecycle-libvirt-tests.lock $(BIN)/molecule test --all

lint:
	$(BIN)/ansible-lint --profile production roles/ playbooks/ examples/

# The demo runs on the two-host rig (tests/testbed/rig.py), stopped again
# whatever happens.
DEMO_RIG := /var/tmp/lifecycle-libvirt-demo-rig

demo: setup
	$(BIN)/python tests/testbed/rig.py up $(DEMO_RIG) >/dev/null
	$(BIN)/ansible-playbook playbooks/demo.yml -e demo_rig_dir=$(DEMO_RIG) \
	    -e demo_guest_dir=$(CURDIR)/$(CACHE)/guest -e demo_audit_path=$(CURDIR)/.build/demo-audit.json \
	    -e demo_domain_type=$$($(BIN)/python -c 'import json; print(json.load(open("$(CACHE)/testbed.json"))["domain_type"])'); \
	status=$$?; $(BIN)/python tests/testbed/rig.py down $(DEMO_RIG) >/dev/null; exit $$status

# The end-to-end test (docs/e2e.md): a Debian 12 cloud image built with
# debootstrap (as root; cached in .cache/debian-image until its recipe
# changes), provisioned from a URL by the provision role, reached over SSH.
# Minutes under TCG, so not part of `make test`.
.PHONY: e2e
E2E_PACKAGES := debootstrap fdisk openssh-client

e2e: setup
	@missing=$$(for package in $(E2E_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$package 2>/dev/null | grep -qx 'install ok installed' || echo $$package; \
	done); \
	if [ -n "$$missing" ]; then echo "e2e: installing" $$missing; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	$(BIN)/python tests/testbed/debian_image.py build
	$(BIN)/pytest -q -s tests/e2e

# Benchmarks are not tests: they print tables (see bench/).  Their virtualenv
# adds the `ansible` package, which ships community.libvirt for comparison.
BENCH_VENV := .build/bench-venv

$(BENCH_VENV)/.installed: requirements/bench.txt requirements/dev.txt requirements/runtime.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q -r requirements/bench.txt
	touch $@

bench: setup $(BENCH_VENV)/.installed
	for script in bench/*_bench.py; do $(BENCH_VENV)/bin/python $$script || exit 1; done

build:
	$(BIN)/ansible-galaxy collection build --force --output-path .build/dist

# Cutting a release (version from galaxy.yml): the fragments go into
# changelogs/changelog.yaml, new modules, plugins and roles are found by their
# version_added, and CHANGELOG.rst is written.  tests/release/test_changelog.py
# previews it on a copy.
release-notes: $(COLLECTION_LINK)
	$(BIN)/antsibull-changelog release

clean:
	rm -rf .build tests/output
