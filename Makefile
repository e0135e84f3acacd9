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

.PHONY: demo test test-fast run worker web venv browser clean tiny-model

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt
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
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The fast suite for the edit-test loop: everything but the tests that run real workers or a
# browser (still against PostgreSQL, Redis and S3). `make test` runs everything.
test-fast: venv
	$(BIN)/python infra/check_services.py
	$(BIN)/python -m pytest -q -m "not worker and not browser" $(PYTEST_ARGS)

# Rebuilds generation/checkpoints/tiny (the default `tiny` model) from scratch on the toy world, in
# two stages: the toy world's captions (var/tiny-toy-stage), then the platform's prompts and motion
# that continues. See generation/toyworld/train.py and the README for the times.
tiny-model: venv
	$(BIN)/python -m generation.toyworld.train --stage toy --output var/tiny-toy-stage
	$(BIN)/python -m generation.toyworld.train --stage platform --start-from var/tiny-toy-stage \
	  --output generation/checkpoints/tiny

clean:
	rm -rf var/
