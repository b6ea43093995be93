# Everything sets itself up: a fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

NODE_STAMP := node_modules/.installed-$(shell cksum package-lock.json | cut -d' ' -f1)

.PHONY: run test fuzz bench profile lint clean

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
	$(PY) -m bench.run

profile: $(STAMP)  # where the engine's main thread spends its time (bench/README.md)
	@test -f bench/.data/events-1000000.csv || \
		$(PY) -m tests.generate --rows 1000000 bench/.data/events-1000000.csv
	@# main() without exit_when_done: the script's os._exit would skip cProfile's printout.
	$(PY) -c 'import cProfile, io, pstats; from bot.cli import main; profile = cProfile.Profile(); \
		profile.runcall(main, ["report", "bench/.data/events-1000000.csv", "--format", "json"], stdout=io.StringIO()); \
		pstats.Stats(profile).sort_stats("tottime").print_stats(30)'

# ESLint for the page's script, from npm's registry at the versions package-lock.json pins.
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "make lint needs Node.js and npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@rm -f node_modules/.installed-*
	@touch $@

lint: $(STAMP) $(NODE_STAMP)
	$(VENV)/bin/ruff check processing bot tests bench
	$(VENV)/bin/ruff format --check processing bot tests bench
	$(VENV)/bin/mypy
	npx --no-install eslint bot/web/static

clean:
	rm -rf $(VENV) node_modules bench/.data .pytest_cache .mypy_cache .ruff_cache
