#!/bin/sh
# The browser page tests drive Debian's Chromium (/usr/bin/chromium) through
# Playwright; no browser is ever downloaded. Install it when it is missing.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
else
    sudo="sudo"
fi
echo "installing Debian's chromium for the browser tests" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium
