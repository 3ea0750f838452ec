# IP public-service assistant: set-up, run and test.
# `make run` and `make test` are the two commands a new user needs (see README.md).

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
RASA := $(VENV)/bin/rasa
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock 2>/dev/null | cut -c1-12)
PYENV_PYTHON310 := /root/.pyenv/versions/3.10.13/bin/python
# The gateway's own environment (README "Security", advisories): current aiohttp on Python 3.11.
GATEWAY_VENV := .venv-gateway
GATEWAY_PY := $(GATEWAY_VENV)/bin/python
GATEWAY_STAMP := $(GATEWAY_VENV)/.installed-$(shell sha256sum requirements-gateway.lock 2>/dev/null | cut -c1-12)
PYENV_PYTHON311 := /root/.pyenv/versions/3.11.7/bin/python
TRAINING_DATA := data/nlu data/rules data/stories
PYTHON_SOURCES := bot actions tests $(wildcard bench) $(wildcard deploy/*.py)

# Quiet, offline-safe defaults for every Rasa command started from here.
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1

.PHONY: help setup run run-cluster train test lint validate pytest eval eval-kb eval-dialogue clean lock lock-gateway

help:
	@echo "make run    - set up, train if needed, start every service and print the chat URL"
	@echo "make test   - lint, validate the training data and run the whole test suite"
	@echo "make run-cluster - the scale-out topology on this machine (PostgreSQL, Redis, 2 Rasa, 2 gateways)"
	@echo "make setup  - create .venv (Python 3.10, Rasa) and .venv-gateway (Python 3.11) from the locks"
	@echo "make train  - train the Rasa model unless one for the current data exists"
	@echo "make eval   - NLU benchmark: holdout, 5-fold CV and a baseline pipeline (~30 min)"
	@echo "make eval-kb - knowledge-answer benchmark: holdout, methods side by side, latency"
	@echo "make eval-dialogue - multi-turn conversations through the running stack (share that hold)"
	@echo "make lock   - re-resolve requirements.in and requirements-gateway.in into their .lock files"

# Python 3.10 is looked for in this order: $(PYTHON), python3.10, the pyenv install.
# Each candidate is run, because a pyenv shim can exist and still fail.
$(VENV)/bin/python:
	@found=""; \
	for candidate in "$(PYTHON)" python3.10 "$(PYENV_PYTHON310)"; do \
	  [ -n "$$candidate" ] || continue; \
	  if "$$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then \
	    found="$$candidate"; break; \
	  fi; \
	  if [ "$$candidate" = "$(PYTHON)" ]; then \
	    echo "error: PYTHON=$(PYTHON) is not a working Python 3.10." >&2; exit 1; \
	  fi; \
	done; \
	if [ -z "$$found" ]; then \
	  echo "error: no Python 3.10 found (tried \$$PYTHON, python3.10, $(PYENV_PYTHON310))." >&2; \
	  echo "Rasa 3.6 runs on Python 3.8-3.10 only: install 3.10, or run 'make PYTHON=/path/to/python3.10 ...'." >&2; \
	  exit 1; \
	fi; \
	echo "Creating $(VENV) with $$found"; \
	"$$found" -m venv $(VENV)

$(STAMP): requirements.lock | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip check
	rm -f $(VENV)/.installed-*
	touch $@

# Python 3.11 for the gateway: $(GATEWAY_PYTHON), python3.11, the pyenv install.
$(GATEWAY_PY):
	@found=""; \
	for candidate in "$(GATEWAY_PYTHON)" python3.11 "$(PYENV_PYTHON311)"; do \
	  [ -n "$$candidate" ] || continue; \
	  if "$$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1; then \
	    found="$$candidate"; break; \
	  fi; \
	  if [ "$$candidate" = "$(GATEWAY_PYTHON)" ]; then \
	    echo "error: GATEWAY_PYTHON=$(GATEWAY_PYTHON) is not a working Python 3.11." >&2; exit 1; \
	  fi; \
	done; \
	if [ -z "$$found" ]; then \
	  echo "error: no Python 3.11 found for the gateway (tried \$$GATEWAY_PYTHON, python3.11, $(PYENV_PYTHON311))." >&2; \
	  echo "Install 3.11, or run 'make GATEWAY_PYTHON=/path/to/python3.11 ...'." >&2; \
	  exit 1; \
	fi; \
	echo "Creating $(GATEWAY_VENV) with $$found"; \
	"$$found" -m venv $(GATEWAY_VENV)

$(GATEWAY_STAMP): requirements-gateway.lock | $(GATEWAY_PY)
	$(GATEWAY_PY) -m pip install --quiet $$(grep -E '^(pip|setuptools)==' requirements-gateway.lock)
	$(GATEWAY_PY) -m pip install --quiet -r requirements-gateway.lock
	$(GATEWAY_PY) -m pip check
	rm -f $(GATEWAY_VENV)/.installed-*
	touch $@

setup: $(STAMP) $(GATEWAY_STAMP)

train: setup
	$(PY) -m bot train

run: setup
	$(PY) -m bot run

# Needs the local PostgreSQL and Redis (README "Scale-out").
run-cluster: setup
	$(PY) -m bot run-cluster

# Style (ruff), the import layers (import-linter, contracts in pyproject.toml), types (mypy) and
# every deployment file in deploy/ (hadolint, kubernetes-validate, compose schema, nginx, systemd).
lint: setup
	$(VENV)/bin/ruff check $(PYTHON_SOURCES)
	$(VENV)/bin/ruff format --check $(PYTHON_SOURCES)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) deploy/check.py

validate: setup
	$(RASA) data validate --domain domain.yml --data $(TRAINING_DATA) --fail-on-warnings

pytest: setup
	$(PY) -m pytest

test: lint validate pytest

# A benchmark, not a test: prints intent accuracy, macro-F1 and district F1 against a baseline.
eval: setup
	$(PY) bench/eval_nlu.py $(EVAL_ARGS)

# A benchmark, not a test: knowledge answers on the holdout (top-1, first reply, unknown details)
# for the old topic paragraphs, BM25, embeddings and the hybrid; latency and rebuild time.
eval-kb: setup
	$(PY) bench/eval_kb.py $(EVAL_ARGS)

# A benchmark, not a test: scripted multi-turn conversations (bench/dialogue_conversations.yml)
# played through the web chat of a freshly started stack; the share that hold and the failing turns.
eval-dialogue: setup
	$(PY) bench/eval_dialogue.py $(EVAL_ARGS)

# Re-resolve every dependency in one pip run (needs the registry) and pin the result.
lock: $(VENV)/bin/python lock-gateway
	rm -rf $(VENV)/lock-env
	$(PY) -m venv $(VENV)/lock-env
	$(VENV)/lock-env/bin/pip install --quiet -r requirements.in
	$(VENV)/lock-env/bin/pip check
	( echo "# Full pinned set from one pip resolve of requirements.in on Python 3.10 (make lock regenerates it)."; \
	  $(VENV)/lock-env/bin/pip freeze --exclude-editable ) > requirements.lock
	rm -rf $(VENV)/lock-env

# The gateway's lock alone (`make lock` does both): pip and setuptools are pinned too (--all).
lock-gateway: $(GATEWAY_PY)
	rm -rf $(GATEWAY_VENV)/lock-env
	$(GATEWAY_PY) -m venv $(GATEWAY_VENV)/lock-env
	$(GATEWAY_VENV)/lock-env/bin/pip install --quiet --upgrade pip setuptools
	$(GATEWAY_VENV)/lock-env/bin/pip install --quiet -r requirements-gateway.in
	$(GATEWAY_VENV)/lock-env/bin/pip check
	( echo "# Full pinned set from one pip resolve of requirements-gateway.in on Python 3.11 (make lock-gateway regenerates it)."; \
	  $(GATEWAY_VENV)/lock-env/bin/pip freeze --all --exclude-editable ) > requirements-gateway.lock
	rm -rf $(GATEWAY_VENV)/lock-env

clean:
	rm -rf models results .pytest_cache .ruff_cache
