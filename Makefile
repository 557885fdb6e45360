# The two entry points of the README. Both do the whole set-up first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast bench clean

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/pcweak demo

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Skips the tests marked slow.
test-fast: setup
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
