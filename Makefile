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
LOCK := requirements-dev.lock
# PyFlink's own virtualenv (ADR 14): apache-flink 1.20.5 at the versions of flink/constraints.txt, the core
# installed editable without its dependencies, so it runs on PyFlink's numpy 1.24 / pandas 2.2.
FLINK_VENV ?= .venv-flink
FLINK_PY := $(FLINK_VENV)/bin/python
FLINK_STAMP := $(FLINK_VENV)/.installed-stamp
# Coverage of the core, the constructs and the Lambda handlers (report only; [tool.coverage] in pyproject.toml).
COVERAGE ?= --cov --cov-report=term

.PHONY: demo test test-fast test-flink flink-venv flink-jar flink-zip lint fmt lock synth bench docs docs-build install clean

# Installs exactly the lock file: every package at its locked version, checked against its sha256 hashes
# (--require-hashes), then the project itself, editable and without dependencies. The lock must pin what
# requirements*.txt pin (scripts/check_lock.py; `make lock` regenerates it).
$(STAMP): requirements.txt requirements-dev.txt $(LOCK) pyproject.toml
	@python3 scripts/check_lock.py
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing dependencies into $(VENV) (first run: a few minutes)..."
	@$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r $(LOCK) 2> >(grep -v "^WARNING: Location" >&2)
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps -e . 2> >(grep -v "^WARNING: Location" >&2)
	@touch $(STAMP)

install: $(STAMP)

$(FLINK_STAMP): flink/requirements.txt flink/constraints.txt pyproject.toml
	@test -x $(FLINK_PY) || python3 -m venv $(FLINK_VENV)
	@echo "installing PyFlink into $(FLINK_VENV) (first run: a few minutes)..."
	@$(FLINK_PY) -m pip install -q --disable-pip-version-check -r flink/requirements.txt -c flink/constraints.txt
	@$(FLINK_PY) -m pip install -q --disable-pip-version-check --no-deps -e . 2> >(grep -v "^WARNING: Location" >&2)
	@$(FLINK_PY) -c "import numpy, pandas, pyflink, clickstream_anomaly.baseline; print('PyFlink venv: numpy', numpy.__version__, 'pandas', pandas.__version__)"
	@touch $(FLINK_STAMP)

flink-venv: $(FLINK_STAMP)

# The Flink application (docs/flink.md "Packaging"): the connector jar, shaded by Maven from flink/pom.xml
# (KINESIS_CONNECTOR=VERSION overrides the connector's version), and the zip MSF runs
# (scripts/package_flink.py: main.py, the job, the core's code, the jar; reproducible).
FLINK_JAR := build/flink/lib/clickstream-flink-connectors.jar
FLINK_ZIP := build/flink/clickstream-flink.zip
$(FLINK_JAR): flink/pom.xml $(shell find flink/src -name "*.java")
	mvn -q -B -f flink/pom.xml package $(if $(KINESIS_CONNECTOR),-Dkinesis.connector.version=$(KINESIS_CONNECTOR))

flink-jar: $(FLINK_JAR)

flink-zip: $(FLINK_JAR)
	python3 scripts/package_flink.py --jar $(FLINK_JAR) -o $(FLINK_ZIP)

# requirements-dev.lock: requirements-dev.txt (which includes requirements.txt) resolved with uv for
# CPython 3.11 on Linux x86_64 (what CI runs), every distribution with its hashes. Run it after changing a pin
# in requirements*.txt and commit both files. Versions already in the lock are kept unless
# `make lock UPGRADE=1`. uv comes from the lock itself (requirements-dev.txt pins it); a venv without it gets
# that pinned version first.
lock:
	@test -x $(VENV)/bin/uv || { test -x $(PY) || python3 -m venv $(VENV); \
		$(PY) -m pip install -q --disable-pip-version-check "$$(grep -m1 '^uv==' requirements-dev.txt)"; }
	$(VENV)/bin/uv pip compile requirements-dev.txt --quiet --generate-hashes \
		--python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
		--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade) -o $(LOCK)

node_modules/.bin/cdk: package.json
	npm install --no-audit --no-fund --silent
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/clickstream-anomaly demo -o $(OUT)

# The gate CI runs (.ci/run): each step fails the build. `make lint` is the same without the docs and tests.
test: lint $(FLINK_STAMP) $(FLINK_JAR)
	$(VENV)/bin/mkdocs build --strict
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(COVERAGE)

# The Flink job's tests alone (tests/flink: the job on the local mini-cluster through $(FLINK_PY)).
test-flink: $(STAMP) $(FLINK_STAMP) $(FLINK_JAR)
	$(PY) -m pytest tests/flink -q

test-fast: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not slow" -q

lint: $(STAMP)
	$(PY) scripts/check_lock.py
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

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
	rm -rf cdk.out $(OUT) .pytest_cache .ruff_cache .mypy_cache .coverage .coverage.* site
