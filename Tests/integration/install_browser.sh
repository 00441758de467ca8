#!/usr/bin/env bash
# Installs what the real-browser CORS tests need (Tests/integration/test_cors_browser.py):
# Debian's headless-capable Chromium and its WebDriver, plus the Python reference server
# (Flask + Flask-CORS). Idempotent: does nothing that is already there.
#
#   bash Tests/integration/install_browser.sh
set -euo pipefail

have_browser() {
    command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}

if ! have_browser; then
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null
fi
chromium --version

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import flask, flask_cors, requests, pytest' >/dev/null 2>&1; then
    "$PYTHON" -m pip install --quiet flask flask-cors requests pytest
fi
"$PYTHON" -c 'import importlib.metadata as m; print("flask-cors", m.version("flask-cors"))'
