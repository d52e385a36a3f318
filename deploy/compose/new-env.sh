#!/usr/bin/env bash
# Writes deploy/compose/.env with a random password for each one compose.yaml
# requires, unless the file is already there. Compose reads .env from the
# compose file's folder, so `docker compose -f deploy/compose/compose.yaml ...`
# finds them for every command (down and logs need them too).
set -euo pipefail
cd "$(dirname "$0")"

# Only its owner may read it: it holds the admin password.
umask 077
if [ -e .env ]; then
  chmod go-rwx .env
  echo ".env already exists; left as it is"
  exit 0
fi
# URL-safe: the MySQL and AMQP passwords go into URLs unescaped.
random() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }
{
  echo "SMSOPS_ADMIN_PASSWORD=$(random)"
  echo "SMSOPS_PROCESS_PASSWORD=$(random)"
  echo "SMSOPS_NOTIFY_PASSWORD=$(random)"
  echo "SMSOPS_MYSQL_PASSWORD=$(random)"
  echo "SMSOPS_AMQP_PASSWORD=$(random)"
} > .env
echo "wrote $(pwd)/.env; the admin password is SMSOPS_ADMIN_PASSWORD in it"
