# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8765
BANK_PORT ?= 8766
export PYTHONUNBUFFERED := 1

.PHONY: venv lint test test-all bench run server bank client bots check-world clean system-deps cluster

venv: $(STAMP)

# System libraries the client needs to render offscreen (Mesa's software OpenGL).
system-deps:
	@bash scripts/system-deps.sh

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	@touch $@

# Style, types and the import contracts between the packages (pyproject.toml says which).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Two workers, each file on one of them (its module fixtures set up once): 370 s instead of 753 s here.
TEST_WORKERS ?= 2
test: lint
	$(PY) -m pytest -m "not slow" -q -n $(TEST_WORKERS) --dist loadfile

test-all: lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/interest.py
	$(PY) benchmarks/capacity.py
	$(PY) benchmarks/client_fps.py

check-world: $(STAMP)
	$(VENV)/bin/expo-world check world/expos/silk-road

# Starts the bank and the world server with the default expo; Ctrl-C stops both.
run: $(STAMP)
	$(PY) -m server.devrun --host $(HOST) --port $(PORT) --bank-port $(BANK_PORT)

# The expo as a cluster on this machine: nats-server, PostgreSQL (data in var/cluster), the bank
# and HALLS hall processes; Ctrl-C stops all. `expo-server --help` says how to add another machine.
# PROCESS_HALLS="silk-road maritime" gives each process one hall, so a portal is a hand-off.
# NATS_PORT and PG_PORT move nats-server and PostgreSQL off their usual ports (another cluster here).
HALLS ?= 2
PROCESS_HALLS ?=
NATS_PORT ?= 4222
PG_PORT ?= 5432
cluster: $(STAMP)
	$(PY) -m server.cluster.launch --host $(HOST) --port $(PORT) --bank-port $(BANK_PORT) --halls $(HALLS) \
		--nats-port $(NATS_PORT) --pg-port $(PG_PORT) $(foreach h,$(PROCESS_HALLS),--process-halls $(h))

client: $(STAMP)
	$(VENV)/bin/expo-client --server ws://$(HOST):$(PORT)

# 200 visitors for a minute on `make run`'s expo, some of them B2B buyers, and a staff member of
# the Altai honey booth (its pass from that run's staff secret) who ships the buyers' orders.
BOTS_MIX ?= wander=3,booth=4,keynote=2,chat=1,catalogue=1,buy=1,deals=1
bots: $(STAMP)
	$(VENV)/bin/expo-bots --server ws://$(HOST):$(PORT) --count 200 --duration 60 --mix $(BOTS_MIX) \
		--staff kz-altai-honey=$$($(VENV)/bin/expo-server --staff-pass kz-altai-honey --data-dir var/server)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
