# The two entry points of the README. Both do the whole set-up first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# The suite runs in TEST_WORKERS processes (pytest-xdist), each on TEST_THREADS CPU threads: on
# 2 cores two single-threaded workers keep both busy where one worker left a third idle
# (docs/results.md, "Set-up and test suite"). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
TEST_THREADS ?= 1
PYTEST := OMP_NUM_THREADS=$(TEST_THREADS) $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

.PHONY: setup demo test test-fast bench clean

setup:
	bash scripts/setup.sh

demo: setup
	$(VENV)/bin/pcweak demo

test: setup
	$(PYTEST) $(PYTEST_ARGS)

# Skips the tests marked slow.
test-fast: setup
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
