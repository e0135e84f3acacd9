#!/usr/bin/env bash
# The web app and one worker side by side on the embedded default; Ctrl-C stops both.
set -euo pipefail
host=${1:-127.0.0.1}; port=${2:-8000}
.venv/bin/celery -A adplatform worker -Q gpu,cpu --concurrency 1 --loglevel WARNING &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM
.venv/bin/python manage.py runserver "$host:$port" --noreload
