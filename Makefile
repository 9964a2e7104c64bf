# Two commands matter: `make lab` (the course in JupyterLab) and `make test` (the whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
LAB_PORT ?= 8888
PYTEST_ARGS ?=

.PHONY: lab test test-under-load test-fast test-quick test-deploy test-browser bench bench-quick bench-targets notebooks lint typecheck clean system-deps install

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q -e ".[test,course,dev]"
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the browser tests (Playwright cannot download its own browser here), and
# the servers of the deployment tests (-m deploy): Slurm with munge, sshd, network namespaces
# (ip), certificates (openssl), JupyterHub's proxy.
# Each is installed only when its command is missing, so a second run costs nothing.
SYSTEM_COMMANDS := chromium:chromium slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client \
	munged:munge /usr/sbin/sshd:openssh-server ip:iproute2 openssl:openssl npm:npm
system-deps:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	missing=; for pair in $(SYSTEM_COMMANDS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || PATH="$$PATH:/usr/sbin" command -v "$${pair%%:*}" >/dev/null 2>&1 \
	    || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install$$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi; \
	if ! command -v configurable-http-proxy >/dev/null 2>&1; then \
	  echo "npm install -g configurable-http-proxy"; $$SUDO npm install -g --silent configurable-http-proxy; \
	fi

# The course runs in a working copy outside the repository (made once; your edits and outputs
# stay there, later copies never overwrite a notebook you have): the repository's notebooks/
# stay as committed. COURSE_DIR=path picks another place.
COURSE_DIR ?= $(HOME)/ipydistribute-course

lab: $(STAMP)
	@mkdir -p "$(COURSE_DIR)"
	@for f in notebooks/*.ipynb notebooks/README.md; do \
	  [ -e "$(COURSE_DIR)/$$(basename "$$f")" ] || cp "$$f" "$(COURSE_DIR)/"; done
	@cp notebooks/selfcheck.py "$(COURSE_DIR)/"
	@echo "The course is in $(COURSE_DIR) (a working copy: the repository's notebooks/ are not touched)."
	@echo "Starting JupyterLab there (open the URL below if no browser appears)."
	$(VENV)/bin/jupyter lab --ServerApp.root_dir="$(COURSE_DIR)" --ip=127.0.0.1 --port=$(LAB_PORT) \
	  $$( [ -z "$$DISPLAY" ] && echo --no-browser ) $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

test: $(STAMP) system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

# The whole suite ROUNDS times in a row while a CPU hog loads every core (tests/hog.sh): each
# round's result and seconds, its log in test-artifacts/under-load/; the hog stops on exit.
ROUNDS ?= 3
test-under-load: $(STAMP) system-deps
	tests/hog.sh $(ROUNDS) $(MAKE) --no-print-directory test PYTEST_ARGS="$(PYTEST_ARGS)"

# The fast layer (tests marked `fast`: no cluster, kernel or browser), under a minute.
test-fast: $(STAMP)
	$(PY) -m pytest -m fast $(PYTEST_ARGS)

# Everything but the browser and notebook tests and those marked slow.
test-quick: $(STAMP)
	$(PY) -m pytest -m "not browser and not notebook and not slow" $(PYTEST_ARGS)

# The deployment tests alone: dask-gateway, JupyterHub, Slurm, SSH and several hosts (as root).
test-deploy: $(STAMP) system-deps
	$(PY) -m pytest -m deploy $(PYTEST_ARGS)

test-browser: $(STAMP) system-deps
	$(PY) -m pytest -m browser $(PYTEST_ARGS)

# The peers (ipyparallel, Ray) come from the `bench` extra; one that fails to install is
# reported as missing in the table.
$(VENV)/.bench-installed: pyproject.toml | $(STAMP)
	-$(PIP) install -q -e ".[bench]"
	touch $@

bench: $(STAMP) $(VENV)/.bench-installed
	$(PY) -m bench

bench-quick: $(STAMP) $(VENV)/.bench-installed
	$(PY) -m bench --quick

# The round-3 targets as a user meets them, in interleaved pairs in one process (docs/performance.md).
bench-targets: $(STAMP)
	$(PY) -m bench.round3

# Re-execute the course and store the outputs in the committed notebooks.
notebooks: $(STAMP)
	$(PY) -m ipydistribute.tools.refresh_notebooks notebooks/

lint: $(STAMP)
	$(VENV)/bin/ruff check ipydistribute tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts dask-scratch-space
