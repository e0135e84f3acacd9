#!/bin/sh
# `pip install` inside an image build (infra/Dockerfile). Uses, when the build was given them, the
# secret `pipcert` (a CA bundle, for networks that intercept TLS) and the wheels in /wheels (a
# local torch CPU build); else TORCH_CPU_INDEX, when set, is where torch's CPU build comes from.
set -eu
if [ -s /run/secrets/pipcert ]; then export PIP_CERT=/run/secrets/pipcert; fi
if ls /wheels/*.whl >/dev/null 2>&1; then
  set -- --find-links /wheels "$@"
elif [ -n "${TORCH_CPU_INDEX:-}" ]; then
  set -- --extra-index-url "$TORCH_CPU_INDEX" "$@"
fi
exec pip install --no-input "$@"
