#!/usr/bin/env bash
# Installs what gatehouse needs to build and test on Debian 12, only when missing.
# Swift 6 itself is expected on PATH (https://swift.org/install); everything else comes from
# Debian's packages and PyPI.
set -euo pipefail

need_apt=()
for pkg in libevent-dev libhiredis-dev libssl-dev libcrypt-dev pkg-config; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${GATEHOUSE_TEST_DEPS:-0}" = 1 ]; then
    for pkg in python3 python3-pip curl redis-server haproxy nginx caddy; do
        dpkg -s "$pkg" >/dev/null 2>&1 || command -v "${pkg%%-*}" >/dev/null 2>&1 || need_apt+=("$pkg")
    done
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing: ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ "${GATEHOUSE_TEST_DEPS:-0}" = 1 ]; then
    # Python packages of the integration suite (real JWT libraries, Flask-CORS reference, ...).
    req=Tests/integration/requirements.txt
    if ! python3 - "$req" <<'PY' 2>/dev/null
import sys, importlib.metadata as m, re
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        m.version(re.split(r"[<>=!~\[]", line)[0])
PY
    then
        echo "installing from PyPI: $req"
        python3 -m pip install -q -r "$req" 2>/dev/null || python3 -m pip install -q --break-system-packages -r "$req"
    fi
    # Headless Chromium for the real-browser CORS tests.
    bash Tests/integration/install_browser.sh >/dev/null
fi
