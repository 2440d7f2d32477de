# Set-up and the two everyday commands. Needs only Python 3.11+ and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DATA := data/demo
CASES ?= parameters/lead_conversion_uplift.yaml parameters/repeat_purchase_optimisation.yaml

# Notebooks name the kernel "python3"; this makes it the virtual environment's Python
# for papermill, nbval and JupyterLab, whatever other kernels the machine has.
export JUPYTER_PATH := $(abspath $(VENV))/share/jupyter

.PHONY: demo test install lab clean

demo: $(STAMP)
	$(BIN)/crmnb demo-data --out $(DEMO_DATA)
	@for case in $(CASES); do $(BIN)/crmnb run $$case || exit 1; done

test: $(STAMP) $(DEMO_DATA)/planted.json
	$(BIN)/python -m pytest --doctest-modules crmnb tests --nbval-lax notebooks

install: $(STAMP)
	@git rev-parse --git-dir >/dev/null 2>&1 && git config filter.crmnb-strip.clean '$(PYTHON) crmnb/run/strip.py' && git config filter.crmnb-strip.smudge cat && echo 'git: notebooks are stripped of outputs when added (filter crmnb-strip)' || true

lab: $(STAMP) $(DEMO_DATA)/planted.json
	$(BIN)/jupyter lab notebooks

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (crmnb)" >/dev/null
	touch $(STAMP)

$(DEMO_DATA)/planted.json: $(STAMP) $(wildcard crmnb/demo/*.py)
	$(BIN)/crmnb demo-data --out $(DEMO_DATA)

clean:
	rm -rf outputs/*/ $(DEMO_DATA) .pytest_cache
