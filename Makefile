# bouncegen: the two set-up commands of README.md, and the benchmarks.
#   make rules   create .venv/, install bouncegen into it, render $(INVENTORY) into build/
#   make test    install the engines (Debian packages) and test dependencies, run every test
PYTHON    ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
INVENTORY ?= inventory.example.toml
BUILD     ?= build
SOURCES   := pyproject.toml $(shell find generator templates rules sa_plugin -type f -not -name '*.pyc' 2>/dev/null)

.PHONY: rules test engines clean storm

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
	touch $@

engines:
	scripts/install-engines

test: engines $(BIN)/bouncegen $(VENV)/.test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The bounce-storm benchmark (README, "Bounce storm"): both dsn policies, exit 1 on any
# accepted backscatter, lost legitimate mail or refused SAV callout. STORM_ARGS=--json etc.
storm: engines $(BIN)/bouncegen $(VENV)/.test-deps
	$(BIN)/python -m bouncegen.storm $(STORM_ARGS)

clean:
	rm -rf $(BUILD) $(VENV) *.egg-info
