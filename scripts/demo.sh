#!/usr/bin/env bash
# The main job on embedded defaults: simulate days of key usage with attacks, train, replay,
# evaluate, and print the top alerts with their reasons. Extra arguments go to `keywatch demo`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh
exec .venv/bin/keywatch demo "$@"
