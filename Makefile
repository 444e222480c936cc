# The two set-up commands are `make run` and `make test`; everything else is optional.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format check lock clean-venv security

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: requirements.lock | $(PY)
	$(PIP_INSTALL) -r requirements.lock
	touch $@

# The development lock is the runtime lock plus test tools, so it satisfies both stamps.
$(VENV)/.installed-dev: requirements-dev.lock requirements.lock | $(PY)
	$(PIP_INSTALL) -r requirements-dev.lock
	touch $@ $(VENV)/.installed-run

# Beside the server run what production runs beside it (README): the outbox worker, which
# sends mail (printed here in development) and runs "Verify now", and the every-minute
# jobs (checkpoints first, so the alerts see them; alerts; expired break-glass). They stop
# with the server.
MINUTELY := audit_checkpoint alerts_evaluate break_glass_expire

run: $(VENV)/.installed-run
	$(PY) scripts/ensure_env.py
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py outbox_worker & worker=$$!; \
	( while sleep 60; do for job in $(MINUTELY); do $(PY) manage.py $$job >/dev/null; done; done ) & \
	minutely=$$!; \
	trap 'kill $$worker $$minutely 2>/dev/null' EXIT INT TERM; \
	$(PY) manage.py runserver $(HOST):$(PORT)

# pytest exits 5 when it collected no tests: that is a failure here, never a pass.
test: $(VENV)/.installed-dev
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; fi; exit $$rc

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(VENV)/.installed-dev
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# Static security analysis (offline): any medium or high finding fails; each accepted
# one carries a `# nosec` with its reason on the line.
security: $(VENV)/.installed-dev
	$(PY) -m bandit -c pyproject.toml -r . -ll -q

# Django's own checks, with throwaway settings so no .env is needed.
check: $(VENV)/.installed-dev
	DJANGO_SETTINGS_MODULE=ehr.settings_test $(PY) manage.py check
	DJANGO_SETTINGS_MODULE=ehr.settings_test $(PY) manage.py makemigrations --check --dry-run

# Re-resolve the locks from pyproject.toml (needs uv: `pip install uv`).
lock:
	uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -o requirements.lock
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes \
		-c requirements.lock -o requirements-dev.lock

clean-venv:
	rm -rf $(VENV)

# Benchmarks (not part of the suite). BENCH_EVENTS=100000 for a quicker run; with
# DATABASE_URL pointing at PostgreSQL the same steps also run there.
.PHONY: bench
bench: $(VENV)/.installed-dev
	$(PY) bench/run.py
