# One entry point: every target bootstraps .venv from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: serve test test-deps lint type bench pkg-check clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/devpi-core serve --host 127.0.0.1 --port 3141

# tests/security/test_security_nginx.py runs nginx in front of the server (skipped without it,
# except under CI=true): install it where we may.
test-deps:
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || \
		(test "$$(id -u)" = 0 && apt-get install -y nginx-light || apt-get install -y nginx) || true

test: $(STAMP) test-deps
	$(BIN)/python -m pytest -n 2 --cov --cov-report=term:skip-covered $(PYTEST_ARGS)
	$(MAKE) pkg-check

# Build the wheel, install it into a clean venv and run the end-to-end tests against it, so a
# module missing from setup.cfg's packages fails here.
pkg-check: $(STAMP)
	rm -rf build/pkg && mkdir -p build/pkg
	$(BIN)/python -m pip wheel --quiet --no-deps -w build/pkg/dist .
	$(PYTHON) -m venv build/pkg/venv
	build/pkg/venv/bin/python -m pip install --quiet "$$(ls build/pkg/dist/*.whl)[test]"
	cd build/pkg && venv/bin/python -m pytest -p no:cacheprovider -m pkgcheck ../../tests

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/ruff check devpi_core plugins tests benchmarks

type: $(STAMP)
	$(BIN)/python -m pip install --quiet mypy types-jsonschema types-requests
	$(BIN)/mypy devpi_core plugins

# Side by side with devpi-server (installed into benchmarks/work/peer-venv on first use);
# the mirror benchmark reads the real upstream index (MIRROR_BENCH_ARGS=--quick: a local fake).
bench: $(STAMP)
	command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python benchmarks/private_bench.py $(PRIVATE_BENCH_ARGS)
	$(BIN)/python benchmarks/mirror_bench.py $(MIRROR_BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
