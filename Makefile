# Two commands: `make run` starts the app on the shipped model, `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test install install-dev clean fuzz bench locks

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# requirements*.txt are locks: every package pinned with its sha256 hashes (`make locks` remakes them),
# so pip installs exactly what was tested and refuses a file that differs; ser itself goes in
# editable and without dependencies, since the locks already hold them.
$(VENV)/.installed: $(BIN)/python requirements.txt requirements-nodeps.txt pyproject.toml
	$(BIN)/pip install --quiet --require-hashes -r requirements.txt
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/streamlit run app.py --server.port $(PORT)

test: install-dev
	$(BIN)/python -m pytest

# Fuzz the decoder (atheris/libFuzzer): FUZZ_RUNS inputs, results in bench/results/fuzz.json.
FUZZ_RUNS ?= 100000
fuzz: install-dev
	$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/pip install --quiet atheris
	nice -n 10 $(BIN)/python bench/fuzz_decode.py --runs $(FUZZ_RUNS)

# Benchmarks (results in bench/results/): speed against the original pipeline, and the models side by
# side on the committed splits (needs the corpora in ../shared/corpora and openSMILE for the baseline).
bench: install-dev
	$(BIN)/python bench/speed.py
	$(BIN)/python -c "import opensmile" 2>/dev/null || $(BIN)/pip install --quiet opensmile==2.6.0
	$(BIN)/python bench/compare_models.py
	$(BIN)/python bench/readme_tables.py

# Remake the locks from pyproject.toml's pins (needs PyPI) after changing a pin. requirements-dev.txt
# resolves every extra (what `make test` installs); the others are resolved within it (-c), so all
# locks agree on every version. They hold what Linux x86-64 with CPython 3.11 needs: pip-tools
# resolves for the platform it runs on. --build-deps-for wheel makes pip-tools read ser's dependencies
# from its built metadata, which keeps pyproject.toml's markers (atheris's); its quicker reading of
# pyproject.toml (7.6) drops them.
# requirements-nodeps.txt is written by hand: its hash is `pip hash` of the wheel that
# `pip download --no-deps resemblyzer==VERSION` fetches.
LOCK_TOOLS := build/pip-tools
LOCK := CUSTOM_COMPILE_COMMAND="make locks" $(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	--build-deps-for wheel --strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host
locks:
	test -x $(LOCK_TOOLS)/bin/pip-compile || ($(PYTHON) -m venv $(LOCK_TOOLS) && \
		$(LOCK_TOOLS)/bin/pip install --quiet pip-tools==7.6.2)
	$(LOCK) --all-extras -o requirements-dev.txt pyproject.toml
	$(LOCK) --extra serve --extra app -c requirements-dev.txt -o requirements.txt pyproject.toml
	$(LOCK) --extra train -c requirements-dev.txt -o requirements-train.txt pyproject.toml
	$(LOCK) --extra ray -c requirements-dev.txt -o requirements-ray.txt pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache
