# bouncegen: the two set-up commands of README.md, and the benchmarks.
#   make rules   create .venv/, install bouncegen into it, render $(INVENTORY) into build/
#   make lint    ruff (pyflakes, import order, bugbear, broad except) and mypy on generator/ (CI runs it first),
#                perlcritic --gentle on sa_plugin/ where installed
#   make test    install the engines (Debian packages) and test dependencies, run every test,
#                then the corpus regression (make corpus)
#   make test-fast  every test that needs no engine (no spamd, Postfix, Redis...): under a minute
#   make install [DESTDIR=/srv/mx-image] [INSTALL_ARGS=--dry-run]   render, then bouncegen install
#   make channel [CHANNEL_DIR=channel]   render, then an sa-update channel archive of the SA files
#   make corpus  bouncegen check on corpus/ with the real spamd and postmap (exit 1 on any wrong verdict)
#   make bench   runner vs raw spamc, naive spamassassin -t and postmap alone (BENCH_CORPUS, BENCH_MANIFEST)
#   make deb     bouncegen_<version>_all.deb with dpkg-buildpackage (debhelper, dh-python), lintian-checked
#   make bench-ledger  1,000,000 recorded Message-IDs in SQLite and Redis: size, records/s, lookup p50/p99
#   make bench-report  bouncegen report over a written 1 GiB mail log: lines/s, peak memory
PYTHON    ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
INVENTORY ?= inventory.example.toml
BUILD     ?= build
SOURCES   := pyproject.toml $(shell find generator templates rules sa_plugin -type f -not -name '*.pyc' 2>/dev/null)

DESTDIR   ?=
CHANNEL_DIR ?= channel
CORPUS    ?= corpus
BENCH_CORPUS   ?= $(CORPUS)
BENCH_INVENTORY ?= $(BENCH_CORPUS)/inventory.toml
BENCH_MANIFEST ?=
BENCH_ARGS     ?=

# The checkers, pinned: a new release with new checks is taken on purpose, never by surprise.
RUFF_VERSION ?= 0.8.4
MYPY_VERSION ?= 1.13.0

.PHONY: rules test test-fast lint engines clean install channel corpus bench bench-ledger bench-report storm deb

rules: $(BIN)/bouncegen
	$(BIN)/bouncegen render $(INVENTORY) -o $(BUILD)

# A regular (not editable) install: what runs is what the wheel ships.
$(BIN)/bouncegen: $(SOURCES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check .
	touch $@

$(VENV)/.test-deps: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check 'pytest>=8' 'pytest-datadir>=1.5'
	$(BIN)/python -m pip install -q --disable-pip-version-check 'pymilter>=1.0.5'  # = the [milter] extra
	$(BIN)/python -m pip install -q --disable-pip-version-check 'matplotlib>=3.6'  # = the [html] extra
	touch $@

$(VENV)/.lint-deps: Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check 'ruff==$(RUFF_VERSION)' 'mypy==$(MYPY_VERSION)'
	touch $@

# Configured in pyproject.toml ([tool.ruff], [tool.mypy]); needs no engine. mypy checks against
# the dependencies bouncegen installs (jinja2, redis, rich...), so the package is installed first.
# perlcritic (Debian's libperl-critic-perl, from scripts/install-engines, which CI runs after
# this) checks the plugins' sources where it is installed; tests/test_sa_plugin.py always does.
lint: $(BIN)/bouncegen $(VENV)/.lint-deps
	$(BIN)/ruff check generator tests scripts
	$(BIN)/mypy
	@if command -v perlcritic >/dev/null; then perlcritic --gentle --quiet sa_plugin && echo "perlcritic: sa_plugin/ clean"; \
	else echo "note: perlcritic not installed (scripts/install-engines): sa_plugin/ not checked here"; fi

engines:
	scripts/install-engines

test: engines $(BIN)/bouncegen $(VENV)/.test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@if [ -f $(CORPUS)/inventory.toml ]; then $(MAKE) --no-print-directory corpus; \
	elif [ -n "$$CI" ]; then echo "error: $(CORPUS)/inventory.toml missing: no corpus regression" >&2; exit 1; \
	else echo "note: $(CORPUS)/inventory.toml missing: corpus regression skipped" >&2; fi

# The fast lane: every test not marked as needing an engine (spamassassin, postfix, smtp, redis,
# engine) or slow; pure logic in seconds, no scripts/install-engines needed (README, "Development").
test-fast: $(BIN)/bouncegen $(VENV)/.test-deps
	$(BIN)/python -m pytest -q -m "not spamassassin and not postfix and not smtp and not redis and not engine and not slow" $(PYTEST_ARGS)

# Corpus regression on the real engines (README, "Corpus regression: bouncegen check").
corpus: $(BIN)/bouncegen
	$(BIN)/bouncegen check --inventory $(CORPUS)/inventory.toml --corpus $(CORPUS)

# A benchmark to read, not a timed test (README, "Performance").
bench: $(BIN)/bouncegen
	$(BIN)/python -m bouncegen.lab.bench --inventory $(BENCH_INVENTORY) --corpus $(BENCH_CORPUS) \
		$(if $(BENCH_MANIFEST),--manifest $(BENCH_MANIFEST)) $(BENCH_ARGS)

# The sent-mail ledger with 1,000,000 entries (docs/ledger.md, "Figures"). BENCH_LEDGER_ARGS=--json FILE etc.
bench-ledger: $(BIN)/bouncegen $(VENV)/.test-deps
	$(BIN)/python -m bouncegen.lab.bench_ledger $(BENCH_LEDGER_ARGS)

# bouncegen report over a written 1 GiB mail log: lines/s and peak memory (docs/report.md, "Speed").
# BENCH_REPORT_ARGS="--size-mb 100 --gzip --json FILE" etc.
bench-report: $(BIN)/bouncegen
	$(BIN)/python -m bouncegen.lab.bench_report $(BENCH_REPORT_ARGS)

# bouncegen install shows a diff, validates with the real tools before anything takes effect,
# keeps a backup and rolls back; DESTDIR installs into a staged tree instead of this host.
install: rules
	$(BIN)/bouncegen install $(BUILD) --root $(if $(DESTDIR),$(DESTDIR),/) $(INSTALL_ARGS)

channel: rules
	$(BIN)/bouncegen channel $(BUILD) -o $(CHANNEL_DIR) $(CHANNEL_ARGS)

# The bounce-storm benchmark (README, "Bounce storm"): both dsn policies x both spamd profiles
# (lean, full) side by side, each with a ham run; exit 1 on any accepted backscatter, lost
# legitimate mail or refused SAV callout. STORM_ARGS="--count 500 --json storm.json" etc.
storm: engines $(BIN)/bouncegen $(VENV)/.test-deps
	$(BIN)/python -m bouncegen.storm $(STORM_ARGS)

# The Debian package (docs/deploying.md): built from a copy of the tree with Debian's own tools
# against Debian 12's python3 packages, then lintian (errors and warnings fail). DEB_DIR: where it goes.
DEB_DIR ?= .
deb: engines
	scripts/build-deb $(DEB_DIR)

clean:
	rm -rf $(BUILD) $(VENV) *.egg-info
