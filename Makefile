# Two entry points for a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .uv/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-dev system-deps lint typecheck pytest bench clean

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet "uv==$(UV_VERSION)"

install: $(UV)
	$(UV) sync --frozen

install-dev: $(UV)
	$(UV) sync --frozen --extra dev

run: install
	$(PY) -m cltv_api.demo --host $(HOST) --port $(PORT)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint Dockerfile

typecheck: install-dev
	$(VENV)/bin/mypy

# Browser tests drive Debian's Chromium (never a downloaded browser build); spreadsheet tests
# recalculate workbooks in LibreOffice through UNO; storage tests start a throwaway PostgreSQL;
# the load test drives a real server with wrk.
SYSTEM_PACKAGES := chromium fonts-liberation libreoffice-calc-nogui python3-uno postgresql wrk
system-deps:
	@if ! dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then \
		echo "installing $(SYSTEM_PACKAGES) from Debian packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	fi

pytest: install-dev system-deps
	$(VENV)/bin/pytest -n 2 --dist loadgroup

test: lint typecheck pytest

bench: install-dev
	$(PY) -m benchmarks.bench_models

clean:
	rm -rf $(VENV) .uv .mypy_cache .ruff_cache .pytest_cache
