# Sourced by up.sh (and by the test that checks it): makes the data dir
# private to this user before anything is written into it.
#
# Everything under the data dir is for this user only: the logs, the
# database files (every message's number), the signing key and the
# passwords. The umask covers what the caller and the services it starts
# create; the chmod, what an earlier run left readable.
private_data_dir() { # dir
  umask 077
  mkdir -p "$1/logs" "$1/keys"
  if ! chmod -R go-rwx "$1"; then
    echo "up: could not make $1 readable by its owner only; fix its ownership first" >&2
    return 1
  fi
}
