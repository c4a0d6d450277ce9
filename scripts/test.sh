#!/usr/bin/env bash
# The whole test suite: installs what it needs, then lint, types, import boundaries, tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh softhsm2 chromium chromium-driver  # SoftHSM2: the PKCS#11 token the response tests act on; Chromium: the console browser tests
py=.venv/bin
echo "== ruff (lint, incl. bandit S rules outside tests)"
$py/ruff check detector tests bench
$py/ruff format --check detector
echo "== notebooks (nbqa ruff)"
$py/nbqa ruff notebooks
echo "== mypy --strict"
$py/mypy
echo "== import-linter (pure core imports no I/O library)"
$py/lint-imports --no-cache
echo "== pytest"
mkdir -p test-artifacts
$py/python -m pytest -n 2 --dist loadfile -p no:cacheprovider --junitxml=test-artifacts/junit.xml "$@"
