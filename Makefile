# The two commands: `make demo` (everything on the embedded default) and `make test` (the suite on
# real PostgreSQL, Redis and an S3-compatible server). Both set up what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Also set by the generation package when imported; here for every tool that make runs.
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# The embedded default: SQLite, the filesystem broker, local media, the tiny model (all under var/).
DEV := DJANGO_DEBUG=1
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test test-fast run worker web venv browser clean tiny-model lock images

# The dev venv: the core, both workers' extras and the test and bench groups, from the lock. torch
# goes first, on its own: the CPU build that pip's configuration finds (any other spec would pull a
# CUDA build of several GB).
$(VENV)/.installed: requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements/dev.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(DEV) $(BIN)/python manage.py migrate --noinput -v0
	$(DEV) $(BIN)/python manage.py demo --host $(HOST) --port $(PORT)
	$(MAKE) --no-print-directory run

run: venv
	$(DEV) $(BIN)/python manage.py migrate --noinput -v0
	$(DEV) bash infra/run-local.sh $(HOST) $(PORT)

web: venv
	$(DEV) $(BIN)/python manage.py runserver $(HOST):$(PORT)

worker: venv
	$(DEV) $(BIN)/celery -A adplatform worker -Q gpu,cpu --concurrency 1 --loglevel INFO

# Browser tests drive Debian's Chromium (no browser can be downloaded by Playwright here); the
# font draws the Traditional Chinese pages.
browser:
	@{ command -v chromium && dpkg -s fonts-wqy-microhei; } >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium (and a CJK font) for the browser tests"; \
	  (apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null) || \
	  echo "chromium could not be installed (needs root and apt): the browser tests will be skipped"; }

test: venv browser
	$(BIN)/python infra/check_services.py
	@bash infra/start-docker.sh
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The fast suite for the edit-test loop, in two processes (pytest-xdist): everything but the tests
# that run real workers or a browser, the schema fuzzer, the image build and the `slow` tests (a
# model on the CPU, a subprocess, a real timeout), still against PostgreSQL, Redis and S3. Between
# runs it keeps the test databases (--reuse-db: only new migrations run; --create-db starts afresh)
# and the compiled, assertion-rewritten modules, even where PYTHONDONTWRITEBYTECODE is set; torch
# gets one thread per process. `make test` runs everything.
test-fast: venv
	$(BIN)/python infra/check_services.py
	PYTHONDONTWRITEBYTECODE= OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --reuse-db \
	  -m "not worker and not browser and not fuzz and not docker and not slow" $(PYTEST_ARGS)

# Rebuilds generation/checkpoints/tiny (the default `tiny` model) from scratch on the toy world, in
# two stages: the toy world's captions (var/tiny-toy-stage), then the platform's prompts and motion
# that continues. See generation/toyworld/train.py and the README for the times.
tiny-model: venv
	$(BIN)/python -m generation.toyworld.train --stage toy --output var/tiny-toy-stage
	$(BIN)/python -m generation.toyworld.train --stage platform --start-from var/tiny-toy-stage \
	  --output generation/checkpoints/tiny

# Rewrites the locks under requirements/ from pyproject.toml, keeping every pin that still fits
# (`make lock LOCK_ARGS=--upgrade` moves them all). uv resolves; pip installs the result. The CPU
# locks take torch's CPU build from the local wheel folder of pip's configuration, or else from
# PyTorch's CPU index; the gpu worker's lock takes PyPI's (CUDA) torch.
LOCK_TOOLS := var/lock-tools
TORCH_CPU_WHEELS ?= $(or $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null),https://download.pytorch.org/whl/cpu/torch/)
UV_COMPILE = $(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --quiet --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" $(LOCK_ARGS)
lock:
	test -x $(LOCK_TOOLS)/bin/uv || { $(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install -q uv==0.13.8; }
	$(UV_COMPILE) -o requirements/web.txt
	$(UV_COMPILE) --extra cpu -f $(TORCH_CPU_WHEELS) -o requirements/cpu-worker.txt
	$(UV_COMPILE) --extra gpu -o requirements/gpu-worker.txt
	$(UV_COMPILE) --all-extras --group test --group bench -f $(TORCH_CPU_WHEELS) -o requirements/dev.txt

# The web, cpu-worker and gpu-worker images (infra/Dockerfile): `make images` or, one of them,
# `make images IMAGES=web`. BASE=<image> picks the base (README, "Packaging and images").
IMAGES ?= web cpu-worker gpu-worker
images:
	bash infra/images.sh $(IMAGES)

clean:
	rm -rf var/
