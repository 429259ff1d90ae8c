# One entry point: every target bootstraps .venv from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: serve test components lint type bench pkg-check clean screenshots
PEER_VENV := benchmarks/work/peer-venv
# Debian packages the tests start or check against (command: package)
# initdb is not on PATH: Debian keeps it in /usr/lib/postgresql/<version>/bin (looked up there)
APT_TOOLS := nginx:nginx-light rsync:rsync logrotate:logrotate systemd-analyze:systemd \
	chromium:chromium chromedriver:chromium-driver initdb:postgresql haproxy:haproxy

# An editable install is not byte-compiled (a wheel's install is): compileall does what pip does
# for a wheel, or every start compiles the sources again where PYTHONDONTWRITEBYTECODE is set
# (0.2 s of a 1 s start-up). Python checks each .pyc against its source's mtime.
$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q devpi_core plugins
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/devpi-core serve --host 127.0.0.1 --port 3141

test: $(STAMP) components
	$(BIN)/python -m pytest -n 2 --cov --cov-report=term:skip-covered $(PYTEST_ARGS)
	$(MAKE) pkg-check

# What the tests use besides Python: Debian tools (installed as root where apt-get works) and
# devpi-server in its own venv for the parity tests. A component that cannot be had makes its
# tests skip with the reason, and fail under CI=true (devpi_core.testing.missing_component).
components: $(STAMP) $(PEER_VENV)/bin/devpi-server
	@missing=""; for pair in $(APT_TOOLS); do \
	  command -v "$${pair%%:*}" >/dev/null || ls /usr/lib/postgresql/*/bin/"$${pair%%:*}" \
	    >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) \
	      || echo "could not install$$missing; their tests skip (fail under CI=true)"; \
	  else echo "not root: install$$missing to run their tests"; fi; fi

$(PEER_VENV)/bin/devpi-server:
	$(BIN)/python -c 'import sys; sys.path.insert(0, "benchmarks"); import harness; harness.ensure_peer_venv()' \
	  || echo "could not install devpi-server; the parity tests skip (fail under CI=true)"

# Build the wheel, install it into a clean venv and run the end-to-end tests against it, so a
# module missing from setup.cfg's packages fails here.
pkg-check: $(STAMP)
	rm -rf build/pkg && mkdir -p build/pkg
	$(BIN)/python -m pip wheel --quiet --no-deps -w build/pkg/dist .
	$(PYTHON) -m venv build/pkg/venv
	build/pkg/venv/bin/python -m pip install --quiet "$$(ls build/pkg/dist/*.whl)[test]"
	cd build/pkg && venv/bin/python -m pytest -p no:cacheprovider -m pkgcheck ../../tests

# The web UI's screenshots in docs/_static/screenshots/ (docs/webui.rst), taken in Chromium.
screenshots: $(STAMP) components
	DEVPI_CORE_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/browser -k without_javascript

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
	$(BIN)/python -m compileall -q devpi_core plugins
	$(BIN)/python benchmarks/private_bench.py $(PRIVATE_BENCH_ARGS)
	$(BIN)/python benchmarks/mirror_bench.py $(MIRROR_BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
