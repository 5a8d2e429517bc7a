# Two commands: `make run` starts the app on the shipped model, `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test install install-dev clean fuzz bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-nodeps.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt requirements-train.txt requirements-ray.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
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

clean:
	rm -rf $(VENV) .pytest_cache
