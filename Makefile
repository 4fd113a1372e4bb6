# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export NO_MKDOCS_2_WARNING := 1
PYTEST_WORKERS ?= 2
OUT ?= demo-output

.PHONY: demo test test-fast lint fmt synth bench docs docs-build install clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing dependencies into $(VENV) (first run: a few minutes)..."
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt 2> >(grep -v "^WARNING: Location" >&2)
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps -e . 2> >(grep -v "^WARNING: Location" >&2)
	@touch $(STAMP)

install: $(STAMP)

node_modules/.bin/cdk: package.json
	npm install --no-audit --no-fund --silent
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/clickstream-anomaly demo -o $(OUT)

test: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mkdocs build --strict
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile

test-fast: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not slow" -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The documentation site (docs/, mkdocs.yml): `make docs` serves it on http://127.0.0.1:8000 and rebuilds on
# every change; `make docs-build` writes site/ and fails on any warning, as `make test` does.
docs: $(STAMP)
	$(VENV)/bin/mkdocs serve

docs-build: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

synth: $(STAMP) node_modules/.bin/cdk
	PATH="$(abspath $(VENV))/bin:$$PATH" npx cdk synth --quiet --no-notices

bench: $(STAMP)
	$(PY) bench/features.py
	@set -e; for b in residual thresholds rcf deepar producer nab; do if [ -f bench/$$b.py ]; then $(PY) bench/$$b.py; fi; done

clean:
	rm -rf cdk.out $(OUT) .pytest_cache .ruff_cache site
