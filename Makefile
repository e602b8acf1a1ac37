# Every target makes (or reuses) the virtual environment in .venv first: on a fresh machine each
# target is one command with no step before it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests run headless: pygame on SDL's dummy driver, MuJoCo rendering through EGL.
HEADLESS := SDL_VIDEODRIVER=dummy MUJOCO_GL=egl

.PHONY: test test-slow play lint format bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: on the CPU-only machines here this takes the local CPU wheel.
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(HEADLESS) $(PY) -m pytest -q -n 2 -m "not slow"

test-slow: $(STAMP)
	$(HEADLESS) $(PY) -m pytest -q -m slow

play: $(STAMP)
	$(VENV)/bin/tron play

lint: $(STAMP)
	$(VENV)/bin/ruff check tron agents acktr arena tests benchmarks
	$(VENV)/bin/ruff format --check tron agents acktr arena tests benchmarks
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format tron agents acktr arena tests benchmarks
	$(VENV)/bin/ruff check --fix tron agents acktr arena tests benchmarks

bench: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
