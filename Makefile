# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ENTERPRISES ?= 50000
YEARS ?= 5
PYTEST_ARGS ?=
# TEST_WORKERS=2 runs the suite in two pytest-xdist workers (tests/conftest.py groups them so
# each session world is built once). Opt-in: on 2 cores it was slower than serial (README).
TEST_WORKERS ?= 0

BI_VENV := .venv-bi
BI_STAMP := $(BI_VENV)/.installed
BI_PORT ?= 8088

.PHONY: setup bi-setup test-tools demo test lint bench bench-bi clean airflow airflow-cli bi gallery \
	cluster-demo

setup: $(STAMP)

# Re-install only when requirements.txt or pyproject.toml change (idempotent). The last step
# starts Spark once so the Delta Lake jars are fetched from Maven Central (into ~/.ivy2.5.2).
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -c "from warehouse.spark import get_spark; get_spark().stop()" > /dev/null 2>&1
	touch $(STAMP)

# Superset pins SQLAlchemy < 2 and Airflow needs >= 2: the BI server gets its own venv.
bi-setup: $(BI_STAMP)

$(BI_STAMP): requirements-bi.txt
	test -x $(BI_VENV)/bin/python || $(PYTHON) -m venv $(BI_VENV)
	$(BI_VENV)/bin/python -m pip install -q --upgrade pip
	$(BI_VENV)/bin/python -m pip install -q -r requirements-bi.txt
	touch $(BI_STAMP)

# What the BI tests drive besides Python: Debian's Chromium with a CJK font, and PostgreSQL.
test-tools:
	@if ! command -v chromium > /dev/null || ! fc-list | grep -qi "Noto Sans CJK" \
		|| ! ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			chromium fonts-noto-cjk postgresql; fi

demo: setup
	$(VENV)/bin/risk-insight demo --enterprises $(ENTERPRISES) --years $(YEARS)

test: setup bi-setup test-tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup) --durations=30 $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Every benchmark that writes bench/RESULTS.md: the lakehouse spine at each of BENCH_SIZES
# (against the Spark floor, plotted in docs/bench_spine.png), the daily DAG under a real
# Airflow with a Spark per task and with the step server, dashboards under load, the reasons
# step of scoring, the quality engine (GX on Spark vs pandas). Never part of `make test`.
BENCH_SIZES ?= 10000 100000 1000000
bench: setup bi-setup
	$(PY) bench/bench_pipeline.py --enterprises $(BENCH_SIZES) --years $(YEARS)
	$(PY) bench/bench_airflow.py
	$(PY) bench/bench_bi.py --users $(BI_USERS) --seconds $(BI_SECONDS)
	$(PY) bench/bench_reasons.py
	$(PY) bench/bench_gx_engine.py
	$(PY) bench/bench_targeting.py

# Dashboards under load: BI_USERS concurrent district users for BI_SECONDS against a local
# Superset's chart-data API (loopback only); a small world is built once under bench/out/.
BI_USERS ?= 50
BI_SECONDS ?= 60
bench-bi: setup bi-setup
	$(PY) bench/bench_bi.py --users $(BI_USERS) --seconds $(BI_SECONDS)

# The demo again on a standalone Spark cluster started on this machine (one master, one worker
# of CLUSTER_CORES cores; warehouse/cluster.py); only the Spark master differs. It runs in
# cluster/ (its own world, lake, outputs under the same relative paths; the same personal-data
# key), and when ./lakehouse holds `make demo`'s lake of the same world the two are compared
# table by table (`risk-insight lake diff`).
CLUSTER_CORES ?= 2
CLUSTER_MEMORY ?= 6g
cluster-demo: setup
	mkdir -p cluster
	cd cluster && RISK_INSIGHT_SECRETS_DIR=$(CURDIR)/.secrets $(CURDIR)/$(PY) -m warehouse.cluster \
		--cores $(CLUSTER_CORES) --memory $(CLUSTER_MEMORY) --work work -- \
		$(CURDIR)/$(VENV)/bin/risk-insight demo --enterprises $(ENTERPRISES) --years $(YEARS)
	@if [ -d lakehouse ]; then $(VENV)/bin/risk-insight lake diff lakehouse cluster/lakehouse; fi

clean:
	rm -rf lakehouse data/sim outputs reports quality_docs cluster

# Local Superset on 127.0.0.1:$(BI_PORT) with the dashboards of the latest demo run.
bi: setup bi-setup
	$(VENV)/bin/risk-insight bi serve --port $(BI_PORT)

# The README's dashboard screenshots (docs/bi/), from the demo's lake and its champion, each
# dashboard checked in Chromium on the way.
gallery: demo bi-setup test-tools
	$(VENV)/bin/risk-insight bi gallery --out docs/bi

# ---- Orchestration (Airflow 3, same venv; metadata in SQLite under .airflow/, loopback only) ----
AIRFLOW_PORT ?= 8080
AIRFLOW_ENV := AIRFLOW_HOME=$(CURDIR)/.airflow \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$(CURDIR)/.airflow/airflow.db \
	AIRFLOW__API__HOST=127.0.0.1 \
	AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	AIRFLOW__API__BASE_URL=http://127.0.0.1:$(AIRFLOW_PORT) \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$(AIRFLOW_PORT)/execution/ \
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH

# The tasks hand their steps to one long-running step server (dags/step_server.py: one Spark
# session for every task instead of a JVM each), started here and stopped with Airflow.
# STEP_SERVER= (empty) runs each step in its task's own process instead. (Not 8793/8794: the
# scheduler's and the triggerer's log servers.)
STEP_SERVER ?= 127.0.0.1:8797

airflow: setup
	mkdir -p .airflow
	@echo "Airflow UI: http://127.0.0.1:$(AIRFLOW_PORT)  user: admin"
	@echo "password: printed below on the first start, kept in" \
		".airflow/simple_auth_manager_passwords.json.generated"
	@echo "other shell: make airflow-cli ARGS='dags list'   (Ctrl-C stops Airflow)"
	@if [ -n "$(STEP_SERVER)" ]; then echo "step server: $(STEP_SERVER), log .airflow/step_server.log"; fi
	export RISK_INSIGHT_STEP_SERVER=$(STEP_SERVER); \
	if [ -n "$(STEP_SERVER)" ]; then \
		$(PY) dags/step_server.py > .airflow/step_server.log 2>&1 & server=$$!; \
		trap 'kill $$server 2> /dev/null' EXIT INT TERM; \
	fi; \
	$(AIRFLOW_ENV) $(VENV)/bin/airflow standalone

# Any Airflow CLI command against the local Airflow, e.g. make airflow-cli ARGS="dags list".
airflow-cli: setup
	mkdir -p .airflow
	$(AIRFLOW_ENV) $(VENV)/bin/airflow $(ARGS)
