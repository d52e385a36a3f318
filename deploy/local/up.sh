#!/usr/bin/env bash
# `make up`: builds the stack in release mode and runs it on this machine.
#
# Starts secantusd-rs when nothing answers at SMSOPS_MONGO_URL, the sandbox
# unless real Twilio credentials are set, then auth-svc, operator-svc, sms-svc,
# process-svc, metrics-svc, notify-svc and the gateway; waits for /readyz; prints the URLs and the
# seeded admin login; then follows the logs. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/../.."

export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/smsops/target}"
DATA_DIR="${SMSOPS_DATA_DIR:-$PWD/data}"
LOG_DIR="$DATA_DIR/logs"
USER_UMASK="$(umask)"
# shellcheck source=deploy/local/data-dir.sh
source deploy/local/data-dir.sh
private_data_dir "$DATA_DIR" || exit 1

export SMSOPS_MONGO_URL="${SMSOPS_MONGO_URL:-mongodb://127.0.0.1:27017}"
export SMSOPS_GATEWAY_ADDR="${SMSOPS_GATEWAY_ADDR:-127.0.0.1:8080}"
export SMSOPS_AUTH_SIGNING_KEY="${SMSOPS_AUTH_SIGNING_KEY:-$DATA_DIR/keys/signing.pem}"
export SMSOPS_ADMIN_EMAIL="${SMSOPS_ADMIN_EMAIL:-admin@smsops.local}"
if [ -z "${SMSOPS_ADMIN_PASSWORD:-}" ]; then
  # A random admin password, made once per data dir and kept there.
  if [ ! -s "$DATA_DIR/admin-password" ]; then
    head -c 18 /dev/urandom | base64 | tr '+/' '-_' > "$DATA_DIR/admin-password"
  fi
  SMSOPS_ADMIN_PASSWORD="$(cat "$DATA_DIR/admin-password")"
fi
export SMSOPS_ADMIN_PASSWORD
# process-svc sends as its own service account and notify-svc records its
# route switches as its own; auth-svc creates both at start-up.
if [ -z "${SMSOPS_PROCESS_PASSWORD:-}" ]; then
  if [ ! -s "$DATA_DIR/process-password" ]; then
    head -c 18 /dev/urandom | base64 | tr '+/' '-_' > "$DATA_DIR/process-password"
  fi
  SMSOPS_PROCESS_PASSWORD="$(cat "$DATA_DIR/process-password")"
fi
export SMSOPS_PROCESS_PASSWORD
if [ -z "${SMSOPS_NOTIFY_PASSWORD:-}" ]; then
  if [ ! -s "$DATA_DIR/notify-password" ]; then
    head -c 18 /dev/urandom | base64 | tr '+/' '-_' > "$DATA_DIR/notify-password"
  fi
  SMSOPS_NOTIFY_PASSWORD="$(cat "$DATA_DIR/notify-password")"
fi
export SMSOPS_NOTIFY_PASSWORD

# Without real Twilio credentials, the sandbox stands in for Twilio and Telegram.
USE_SANDBOX=""
if [ -z "${SMSOPS_TWILIO_ACCOUNT_SID:-}" ]; then
  USE_SANDBOX=1
  SANDBOX_ADDR="${SMSOPS_SANDBOX_ADDR:-127.0.0.1:4010}"
  export SMSOPS_TWILIO_BASE_URL="http://$SANDBOX_ADDR"
  export SMSOPS_TWILIO_ACCOUNT_SID="AC00000000000000000000000000000000"
  export SMSOPS_TWILIO_AUTH_TOKEN="sandbox-auth-token"
  export SMSOPS_TWILIO_FROM="${SMSOPS_TWILIO_FROM:-+15005550006}"
fi
# Without a real bot token, alerts go to the sandbox's Telegram.
if [ -z "${SMSOPS_TELEGRAM_BOT_TOKEN:-}" ]; then
  export SMSOPS_TELEGRAM_URL="http://${SMSOPS_SANDBOX_ADDR:-127.0.0.1:4010}"
  export SMSOPS_TELEGRAM_BOT_TOKEN="123456:sandbox-bot-token"
  export SMSOPS_TELEGRAM_CHAT_IDS="${SMSOPS_TELEGRAM_CHAT_IDS:--1000000000001}"
  USE_SANDBOX=1
  SANDBOX_ADDR="${SMSOPS_SANDBOX_ADDR:-127.0.0.1:4010}"
fi
export SMSOPS_TWILIO_STATUS_CALLBACK_URL="${SMSOPS_TWILIO_STATUS_CALLBACK_URL:-http://$SMSOPS_GATEWAY_ADDR/webhooks/twilio/status}"
# With the sandbox standing in for Twilio, sms-svc has two provider
# accounts, `twilio` (the sandbox's Twilio, first for pairs without a route)
# and `smsc` (its SMSC, over SMPP): a pair's route picks between them.
SANDBOX_SMSC_ADDR="${SMSOPS_SANDBOX_SMSC_ADDR:-127.0.0.1:2775}"
if [ -n "$USE_SANDBOX" ] && [ -z "${SMSOPS_PROVIDERS:-}" ] && [ "${SMSOPS_TWILIO_BASE_URL:-}" = "http://$SANDBOX_ADDR" ]; then
  export SMSOPS_PROVIDERS="twilio,smsc"
  export SMSOPS_PROVIDER_TWILIO_KIND="twilio"
  export SMSOPS_PROVIDER_TWILIO_BASE_URL="$SMSOPS_TWILIO_BASE_URL"
  export SMSOPS_PROVIDER_TWILIO_ACCOUNT_SID="$SMSOPS_TWILIO_ACCOUNT_SID"
  export SMSOPS_PROVIDER_TWILIO_AUTH_TOKEN="$SMSOPS_TWILIO_AUTH_TOKEN"
  export SMSOPS_PROVIDER_TWILIO_FROM="$SMSOPS_TWILIO_FROM"
  export SMSOPS_PROVIDER_TWILIO_STATUS_CALLBACK_URL="$SMSOPS_TWILIO_STATUS_CALLBACK_URL"
  export SMSOPS_PROVIDER_SMSC_KIND="smpp"
  export SMSOPS_PROVIDER_SMSC_ADDR="$SANDBOX_SMSC_ADDR"
  export SMSOPS_PROVIDER_SMSC_SYSTEM_ID="smsops"
  export SMSOPS_PROVIDER_SMSC_PASSWORD="sbx-smpp"
fi

echo "==> building (release)"
# The build cache is shared with `make test` and other clones, not data:
# it keeps the user's own umask.
(
  umask "$USER_UMASK"
  cargo build --release --locked -p auth-svc -p operator-svc -p sms-svc -p process-svc -p metrics-svc -p notify-svc -p gateway
  if [ -n "$USE_SANDBOX" ]; then
    cargo build --release --locked -p smsops-tests --bin sandbox
  fi
)
BIN="$CARGO_TARGET_DIR/release"

PIDS=()
stop_all() {
  trap - INT TERM EXIT
  if [ "${#PIDS[@]}" -gt 0 ]; then
    echo
    echo "==> stopping"
    kill -TERM "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
  fi
}
trap stop_all INT TERM EXIT

start() { # name command...
  local name="$1"; shift
  "$@" >>"$LOG_DIR/$name.log" 2>&1 &
  PIDS+=("$!")
  echo "    $name (pid $!, log $LOG_DIR/$name.log)"
}

# host:port of the first host in a mongodb:// URL
mongo_hostport() {
  local rest="${1#mongodb://}"
  rest="${rest#*@}"
  rest="${rest%%/*}"
  rest="${rest%%,*}"
  case "$rest" in *:*) echo "$rest" ;; *) echo "$rest:27017" ;; esac
}
answers() { # host:port
  (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null
}

echo "==> starting"
MONGO="$(mongo_hostport "$SMSOPS_MONGO_URL")"
if answers "$MONGO"; then
  echo "    MongoDB already answers at $MONGO"
else
  mkdir -p "$DATA_DIR/mongo"
  start secantusd-rs secantusd-rs --host "${MONGO%:*}" --port "${MONGO##*:}" --storage-path "$DATA_DIR/mongo"
  for _ in $(seq 1 100); do answers "$MONGO" && break; sleep 0.1; done
fi

if [ ! -f "$SMSOPS_AUTH_SIGNING_KEY" ]; then
  "$BIN/auth-svc" gen-key "$SMSOPS_AUTH_SIGNING_KEY"
  echo "    generated signing key $SMSOPS_AUTH_SIGNING_KEY"
fi

if [ -n "$USE_SANDBOX" ]; then
  start sandbox "$BIN/sandbox" --addr "$SANDBOX_ADDR" --smsc-addr "$SANDBOX_SMSC_ADDR"
fi
start auth-svc "$BIN/auth-svc"
start operator-svc "$BIN/operator-svc"
start sms-svc "$BIN/sms-svc"
start process-svc "$BIN/process-svc"
start metrics-svc "$BIN/metrics-svc"
start notify-svc "$BIN/notify-svc"
start gateway "$BIN/gateway"

URL="http://$SMSOPS_GATEWAY_ADDR"
echo "==> waiting for $URL/readyz"
ready=""
for _ in $(seq 1 120); do
  if curl -fsS "$URL/readyz" >/dev/null 2>&1; then ready=1; break; fi
  for pid in "${PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "a process exited during start-up; last log lines:" >&2
      tail -n 5 "$LOG_DIR"/*.log >&2
      exit 1
    fi
  done
  sleep 0.5
done
if [ -z "$ready" ]; then
  echo "not ready after 60 s:" >&2
  curl -sS "$URL/readyz" >&2 || true
  exit 1
fi

TWILIO_INFO="$SMSOPS_TWILIO_BASE_URL"
TELEGRAM_INFO="${SMSOPS_TELEGRAM_URL:-https://api.telegram.org}"
if [ -n "$USE_SANDBOX" ]; then
  case "$TWILIO_INFO" in *"$SANDBOX_ADDR"*) TWILIO_INFO="sandbox at $TWILIO_INFO (what it received: /_sandbox/twilio/messages)" ;; esac
  case "$TELEGRAM_INFO" in *"$SANDBOX_ADDR"*) TELEGRAM_INFO="sandbox at $TELEGRAM_INFO (what it received: /_sandbox/telegram/messages)" ;; esac
fi
SMPP_INFO="not used"
if [ "${SMSOPS_PROVIDER_SMSC_ADDR:-}" = "$SANDBOX_SMSC_ADDR" ]; then
  SMPP_INFO="sandbox SMSC at $SANDBOX_SMSC_ADDR, the account smsc: route a pair to it (what it took: /_sandbox/smsc/messages)"
elif [ -n "${SMSOPS_SMPP_ADDR:-}" ]; then
  SMPP_INFO="$SMSOPS_SMPP_ADDR, sending instead of Twilio"
fi
cat <<INFO

  smsops is up
  dashboard: $URL/
  API:       $URL/api/v1
  API docs:  $URL/docs/
  Twilio:    $TWILIO_INFO
  SMPP:      ${SMPP_INFO}
  Telegram:  $TELEGRAM_INFO
  admin:     $SMSOPS_ADMIN_EMAIL / $SMSOPS_ADMIN_PASSWORD
  logs:      $LOG_DIR  (following below; Ctrl-C stops everything)

INFO
tail -n 0 -F "$LOG_DIR"/*.log &
PIDS+=("$!")
# Stop everything as soon as any one of them exits.
wait -n "${PIDS[@]}"
