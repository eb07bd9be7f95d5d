#!/usr/bin/env bash
# The whole test suite, as the README promises: installs what tests need, checks formatting and
# lints, runs every test. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x scripts/install-test-deps.sh ]; then
  scripts/install-test-deps.sh
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --locked --all-targets
if [ -x scripts/fuzz.sh ]; then
  echo "== fuzz (bounded)"
  scripts/fuzz.sh "${HORTUS_FUZZ_SECONDS:-20}"
fi
echo "== all checks passed"
