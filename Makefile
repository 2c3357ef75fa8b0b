# fieldvault: the two commands of the README.
#   make run   set up from nothing, start the embedded database (unless
#              FIELDVAULT_COUCHDB_URL is set) and serve under gunicorn
#   make test  set up from nothing and run the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
EMBEDDED_PORT := 5984

.PHONY: setup run test stop bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

run: setup
	@if [ -z "$$FIELDVAULT_COUCHDB_URL" ]; then \
	  $(PY) -m service.embedded_db --port $(EMBEDDED_PORT) --dir var/pouchdb --pidfile var/pouchdb.pid; \
	else echo "using CouchDB at $$FIELDVAULT_COUCHDB_URL (no embedded database)"; fi
	$(VENV)/bin/fieldvault db init
	@echo "fieldvault listens on http://$${FIELDVAULT_BIND_HOST:-127.0.0.1}:$${FIELDVAULT_BIND_PORT:-8080}"
	@echo "first admin: $(VENV)/bin/fieldvault users bootstrap-admin --username admin"
	$(VENV)/bin/gunicorn --config gunicorn.conf.py 'service.app:create_app()'

stop:
	@if [ -f var/pouchdb.pid ]; then kill $$(cat var/pouchdb.pid) 2>/dev/null || true; rm -f var/pouchdb.pid; fi

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) bench/run_all.py

clean: stop
	rm -rf $(VENV) node_modules var .pytest_cache .hypothesis
