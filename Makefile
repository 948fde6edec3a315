# Each target is one command from a fresh clone:
#   make run    set up the environment, then execute every notebook in place (regenerating its figures)
#   make test   set up the environment, then run the unit tests and re-execute every notebook under nbval
#   make bench  set up the environment, then run the speed benchmark (prints a table, writes bench/results.json)
# The environment is a virtualenv in $(VENV) (default .venv) with the pinned requirements.txt and the project itself
# installed in editable mode (`import helpers` from anywhere); pip always runs, so it follows requirements.txt.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
NOTEBOOKS = $(sort $(wildcard notebooks/[0-9]*.ipynb))

.PHONY: env run test bench

env:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .

run: env
	# CoalesceStreams after execution keeps only the final state of each progress bar in the stored outputs.
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1800 \
		--NotebookExporter.preprocessors=nbconvert.preprocessors.CoalesceStreamsPreprocessor $(NOTEBOOKS)

# OMP_WAIT_POLICY=PASSIVE: torch's idle threads sleep instead of spinning, so a busy machine does not slow training
# cells by orders of magnitude (seen: 33 s idle, over 30 min with both cores busy).
test: env
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -p no:cacheprovider tests $(NOTEBOOKS) --nbval-lax --nbval-cell-timeout=1800

bench: env
	$(BIN)/python bench/speed.py
