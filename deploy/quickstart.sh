#!/usr/bin/env bash
# Installs what is missing, builds gatehouse in release mode and starts it on
# deploy/examples/quickstart.yaml in front of the demo upstream (`gatehouse echo`).
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
swift build -c release --product gatehouse
bin=.build/release/gatehouse
"$bin" check --config deploy/examples/quickstart.yaml
"$bin" echo --listen 127.0.0.1:9000 &
echo_pid=$!
"$bin" run --config deploy/examples/quickstart.yaml &
gw_pid=$!
trap 'kill $gw_pid $echo_pid 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
sleep 1
cat <<'TRY'

gatehouse is listening on http://127.0.0.1:8080 (admin on 127.0.0.1:9901). Try:

  curl -i http://127.0.0.1:8080/docs/hello?x=1          # public route: the echo upstream answers
  curl -i http://127.0.0.1:8080/api/orders              # protected route: the uniform 401
  curl -i http://127.0.0.1:8080/nothing-here            # no route: 404 (default deny)
  curl -i 'http://127.0.0.1:8080/docs/%2e%2e/%2e%2e/x'  # climbing above /: 400
  curl -s http://127.0.0.1:9901/metrics | head

Ctrl-C stops the gateway and the demo upstream.
TRY
wait $gw_pid
