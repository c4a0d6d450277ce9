#!/usr/bin/env bash
# The main job on embedded defaults: simulate days of key usage with attacks, train, start the
# embedded Kafka broker and two `keywatch run` consumers, stream the attack days through them into
# SQLite with live alerts, then evaluate and print the top alerts, incidents and dead letters.
# Extra arguments go to `keywatch demo` (e.g. --offline to replay files instead).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh softhsm2
exec .venv/bin/keywatch demo "$@"
