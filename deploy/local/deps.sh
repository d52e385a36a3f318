#!/usr/bin/env bash
# Installs what `make up` and `make test` need and the machine lacks. Safe to
# run again: each step is skipped when its tool is already there.
set -euo pipefail

SECANTUS_VERSION="0.5.3-beta.196"

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# Installs Debian packages, waiting for another apt to finish rather than
# failing on its lock, and fails loudly if they did not install.
apt_install() {
  as_root apt-get -o DPkg::Lock::Timeout=600 update -qq
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@"
}
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
  have cmake || apt_install cmake
  # Its own target dir: its build must not churn the project's cache.
  CARGO_TARGET_DIR="$HOME/.cache/smsops/secantus-target" \
    cargo install secantus-mdb --version "$SECANTUS_VERSION" --ignore-rust-version --locked
fi

# MariaDB and RabbitMQ run on every machine of this project; start (or, on a
# bare machine, install) them when nothing answers on their ports.
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # port name
  for _ in $(seq 1 60); do answers "$1" && return 0; sleep 0.5; done
  echo "deps: $2 did not come up on port $1" >&2
  return 1
}
if ! answers 3306; then
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    apt_install mariadb-server
  fi
  echo "deps: starting MariaDB"
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for 3306 MariaDB
fi
if ! answers 5672; then
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    apt_install rabbitmq-server
  fi
  echo "deps: starting RabbitMQ"
  as_root rabbitmq-server -detached
  wait_for 5672 RabbitMQ
fi

# The dashboard is built with Node.js 20.19 or later (Vite's floor). Debian
# 12 ships 18, so where that is all there is, npm brings a newer Node from
# the npm registry (the `node` package carries the official binaries).
node_ok() {
  have node && node -e 'const [a, b] = process.versions.node.split(".").map(Number);
    process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'
}
if ! node_ok; then
  have npm || apt_install nodejs npm
  echo "deps: installing Node.js 20 from the npm registry"
  as_root npm install --global --no-audit --no-fund node@20
  hash -r
  node_ok || { echo "deps: Node.js 20.19+ is needed for the dashboard; found $(node --version 2>&1)" >&2; exit 1; }
fi

# `make deploy-check` validates the Kubernetes manifests with
# kubernetes-validate and the compose file with check-jsonschema (both PyPI,
# Apache-2.0), which carry the Kubernetes and compose-spec schemas.
if ! python3 -c 'import kubernetes_validate, check_jsonschema' >/dev/null 2>&1; then
  echo "deps: installing kubernetes-validate and check-jsonschema"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    "kubernetes-validate==1.37.0" "check-jsonschema==0.39.0"
fi

# The dashboard tests drive Debian's Chromium through its ChromeDriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "deps: installing chromium and chromium-driver"
  apt_install chromium chromium-driver
fi
