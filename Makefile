# IP public-service assistant: set-up, run and test.
# `make run` and `make test` are the two commands a new user needs (see README.md).

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
RASA := $(VENV)/bin/rasa
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock 2>/dev/null | cut -c1-12)
PYENV_PYTHON310 := /root/.pyenv/versions/3.10.13/bin/python
TRAINING_DATA := data/nlu data/rules data/stories
PYTHON_SOURCES := bot actions tests $(wildcard bench)

# Quiet, offline-safe defaults for every Rasa command started from here.
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1

.PHONY: help setup run run-cluster train test lint validate pytest eval eval-kb eval-dialogue clean lock

help:
	@echo "make run    - set up, train if needed, start every service and print the chat URL"
	@echo "make test   - lint, validate the training data and run the whole test suite"
	@echo "make run-cluster - the scale-out topology on this machine (PostgreSQL, Redis, 2 Rasa, 2 gateways)"
	@echo "make setup  - create .venv on Python 3.10 with the pinned dependencies"
	@echo "make train  - train the Rasa model unless one for the current data exists"
	@echo "make eval   - NLU benchmark: holdout, 5-fold CV and a baseline pipeline (~30 min)"
	@echo "make eval-kb - knowledge-answer benchmark: holdout, methods side by side, latency"
	@echo "make eval-dialogue - multi-turn conversations through the running stack (share that hold)"
	@echo "make lock   - re-resolve requirements.in into requirements.lock"

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

setup: $(STAMP)

train: setup
	$(PY) -m bot train

run: setup
	$(PY) -m bot run

# Needs the local PostgreSQL and Redis (README "Scale-out").
run-cluster: setup
	$(PY) -m bot run-cluster

# Style (ruff), the import layers (import-linter, contracts in pyproject.toml) and types (mypy).
lint: setup
	$(VENV)/bin/ruff check $(PYTHON_SOURCES)
	$(VENV)/bin/ruff format --check $(PYTHON_SOURCES)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

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
lock: $(VENV)/bin/python
	rm -rf $(VENV)/lock-env
	$(PY) -m venv $(VENV)/lock-env
	$(VENV)/lock-env/bin/pip install --quiet -r requirements.in
	$(VENV)/lock-env/bin/pip check
	( echo "# Full pinned set from one pip resolve of requirements.in on Python 3.10 (make lock regenerates it)."; \
	  $(VENV)/lock-env/bin/pip freeze --exclude-editable ) > requirements.lock
	rm -rf $(VENV)/lock-env

clean:
	rm -rf models results .pytest_cache .ruff_cache
