# Everything sets itself up: a fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test fuzz bench lint clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required (set PYTHON=...)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,bench,lint]'
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	$(VENV)/bin/clinic-events serve

test: $(STAMP)
	$(PY) -m pytest

fuzz: $(STAMP)  # the engine's fuzz tests, far longer than in make test
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-20000} $(PY) -m pytest tests/processing/test_fuzz.py -p no:cacheprovider --timeout=0

bench: $(STAMP)
	$(PY) bench/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check processing bot tests bench
	$(VENV)/bin/ruff format --check processing bot tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) bench/.data .pytest_cache .mypy_cache .ruff_cache
