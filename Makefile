# Two commands on a fresh machine: `make demo` (the main job, offline) and `make test`.
# `make ui` then serves the demo's set in the Dagster UI (http://127.0.0.1:3000).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The Dagster instance folder the CLI opens (PipelineSettings.resolved_instance_dir): $DAGSTER_HOME, else
# <state folder>/dagster, the state folder being $ACTOR_PIPELINE_STATE_DIR or <output>/.state.
OUTPUT_DIR := $(or $(ACTOR_PIPELINE_OUTPUT_DIR),output)
STATE_DIR := $(or $(ACTOR_PIPELINE_STATE_DIR),$(OUTPUT_DIR)/.state)
INSTANCE_HOME := $(abspath $(or $(DAGSTER_HOME),$(STATE_DIR)/dagster))
UI_HOST ?= 127.0.0.1
UI_PORT ?= 3000

.PHONY: demo test install ui instance-home cluster cluster-stop

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,faces,cluster]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/actor-pipeline demo

# Six workers on two cores: many tests wait on subprocesses, servers and a browser (four left the
# machine a fifth idle, 254 s against 230 s; docs/benchmarks.md). One test at a time per worker
# (xdist would otherwise hand the first worker the longest tests, collected first).
test: $(STAMP)
	$(BIN)/python -m pytest -n 6 --maxschedchunk=1

# The UI, the daemon and the code server on the CLI's instance, configured by deploy/dagster.yaml
# (copied in once: an existing dagster.yaml there, e.g. for Postgres, is kept). Ctrl-C stops it.
# The webserver and daemon log warnings and errors only: at info the sensor daemon logs two lines
# per sensor every 5 s. Runs print their progress at INFO (python_logs in deploy/dagster.yaml).
ui: $(STAMP)
	mkdir -p '$(INSTANCE_HOME)'
	test -e '$(INSTANCE_HOME)/dagster.yaml' || cp deploy/dagster.yaml '$(INSTANCE_HOME)/dagster.yaml'
	@echo 'Starting the Dagster UI on http://$(UI_HOST):$(UI_PORT) (it loads in some seconds); Ctrl-C stops it'
	DAGSTER_HOME='$(INSTANCE_HOME)' $(BIN)/dg dev -h $(UI_HOST) -p $(UI_PORT) --log-level warning

instance-home:
	@echo '$(INSTANCE_HOME)'

# The production topology on loopback: Postgres behind PgBouncer, and Redis (Debian's postgresql,
# pgbouncer and redis-server, installed here when missing), the code server, webserver (UI on UI_PORT), daemon and two Celery
# workers (actor_pipeline/cluster, deploy/cluster/). Ctrl-C, or `make cluster-stop` from another
# shell, stops it all.
CLUSTER_DIR ?= $(OUTPUT_DIR)/.cluster
cluster: $(STAMP)
	@command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -x /usr/sbin/pgbouncer ] || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql pgbouncer redis-server)
	$(BIN)/python -m actor_pipeline.cluster up --dir '$(CLUSTER_DIR)' --port $(UI_PORT)

cluster-stop:
	$(BIN)/python -m actor_pipeline.cluster down --dir '$(CLUSTER_DIR)'
