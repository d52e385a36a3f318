#!/usr/bin/env bash
# Installs what `make up` and `make test` need and the machine lacks. Safe to
# run again: each step is skipped when its tool is already there.
set -euo pipefail

SECANTUS_VERSION="0.5.3-beta.196"

have() { command -v "$1" >/dev/null 2>&1; }
export PATH="$HOME/.cargo/bin:$PATH"

if ! have cargo; then
  echo "deps: cargo is missing; install the Rust toolchain first" >&2
  exit 1
fi
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

# MongoDB has no Debian package here: tests and `make up` use secantusd-rs, a
# MongoDB-wire server on WiredTiger. Production points SMSOPS_MONGO_URL at MongoDB.
if ! have secantusd-rs; then
  echo "deps: installing secantusd-rs $SECANTUS_VERSION (about 10 minutes, once)"
  if ! have cmake; then
    if [ "$(id -u)" -eq 0 ]; then
      apt-get update -qq && apt-get install -y -qq cmake
    else
      sudo apt-get update -qq && sudo apt-get install -y -qq cmake
    fi
  fi
  # Its own target dir: its build must not churn the project's cache.
  CARGO_TARGET_DIR="$HOME/.cache/smsops/secantus-target" \
    cargo install secantus-mdb --version "$SECANTUS_VERSION" --ignore-rust-version --locked
fi
