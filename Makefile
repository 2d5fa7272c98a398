# Two entry points: `make dev` starts everything locally, `make test` runs the suite.
# Both create .venv and install the project on first use, so a fresh machine needs only Python 3.11.
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: dev test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(VENV)/bin/sync-pipelines dev

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -rs --durations=15

bench: $(STAMP)
	$(VENV)/bin/python -m benchmarks.shipstation_sync

clean:
	rm -rf $(VENV) .local
