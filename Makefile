# fieldvault: the two commands of the README.
#   make run   set up from nothing, start the embedded database (unless
#              FIELDVAULT_COUCHDB_URL is set) and serve under gunicorn
#   make test  set up from nothing, type-check (make typecheck) and run the
#              whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The embedded database's port. With FIELDVAULT_COUCHDB_URL unset, `make run`
# starts pouchdb-server there and hands the same URL to the CLI and gunicorn
# (FIELDVAULT_COUCHDB_URL is the one setting every part reads).
EMBEDDED_PORT ?= 5984
# Where the embedded database keeps its data and pid file.
EMBEDDED_DIR ?= var
ifeq ($(strip $(FIELDVAULT_COUCHDB_URL)),)
EMBEDDED := yes
export FIELDVAULT_COUCHDB_URL := http://127.0.0.1:$(EMBEDDED_PORT)
endif

.PHONY: setup run test typecheck stop bench clean chromium

$(VENV)/.installed: requirements.txt requirements-dev.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	@echo "installing the pinned npm packages (pouchdb-server, PouchDB, @hpke/core, esbuild, ajv): a few minutes on a fresh machine"
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The tablet app (tablet/dist, not committed): rebuilt when a source changes.
tablet/dist/build.json: node_modules/.installed tablet/build.mjs $(wildcard tablet/src/*) js/fle.mjs
	node tablet/build.mjs

# The browser tests drive Debian's chromium (Playwright cannot download its own
# browser here); as root it is installed through apt, otherwise the run stops.
chromium:
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "the browser tests need Debian's chromium: run 'sudo apt-get install -y chromium'" >&2; exit 1; fi; \
	fi
	@command -v chromium >/dev/null || { echo "chromium could not be installed; the browser tests cannot run" >&2; exit 1; }

setup: $(VENV)/.installed node_modules/.installed tablet/dist/build.json

run: setup
	@if [ "$(EMBEDDED)" = yes ]; then \
	  $(PY) -m service.embedded_db --port $(EMBEDDED_PORT) --dir $(EMBEDDED_DIR)/pouchdb --pidfile $(EMBEDDED_DIR)/pouchdb.pid; \
	else echo "using CouchDB at $$FIELDVAULT_COUCHDB_URL (no embedded database)"; fi
	$(VENV)/bin/fieldvault db init
	@echo "fieldvault listens on http://$${FIELDVAULT_BIND_HOST:-127.0.0.1}:$${FIELDVAULT_BIND_PORT:-8080}"
	@echo "first admin: $(VENV)/bin/fieldvault users bootstrap-admin --username admin"
	$(VENV)/bin/gunicorn --config gunicorn.conf.py 'service.app:create_app()'

stop:
	@if [ -f $(EMBEDDED_DIR)/pouchdb.pid ]; then kill $$(cat $(EMBEDDED_DIR)/pouchdb.pid) 2>/dev/null || true; rm -f $(EMBEDDED_DIR)/pouchdb.pid; fi

# mypy as configured in pyproject.toml: strict on the format, keys/ and sync/.
typecheck: $(VENV)/.installed
	$(PY) -m mypy

# Type-checked first, so the test runner's summary closes the output.
test: setup chromium typecheck
	$(PY) -m pytest

bench: setup
	$(PY) bench/run_all.py

clean: stop
	rm -rf $(VENV) node_modules var .pytest_cache .hypothesis .mypy_cache tablet/dist
