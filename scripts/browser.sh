#!/usr/bin/env bash
# The real browser the web UI's tests drive (tests/integration/web/test_web_browser.py): Chromium and its WebDriver from
# Debian's packages. Idempotent: does nothing when /usr/bin/chromium is already there.
# Called by .ci/run before the tests; run it by hand to get the browser tests locally.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "browser: chromium and chromedriver already installed"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core
echo "browser: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
