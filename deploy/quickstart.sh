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
"$bin" test --config deploy/examples/quickstart.yaml deploy/examples/policy-tests.yaml
"$bin" echo --listen 127.0.0.1:9000 &
echo_pid=$!
"$bin" run --config deploy/examples/quickstart.yaml &
gw_pid=$!
trap 'kill $gw_pid $echo_pid 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
sleep 1
cat <<'TRY'

gatehouse is listening on http://127.0.0.1:8080 (admin on 127.0.0.1:9901). Try:

  # public route: the echo upstream answers with what it received
  curl -i 'http://127.0.0.1:8080/docs/hello?x=1'
  # protected route without credentials: the uniform 401
  curl -i http://127.0.0.1:8080/api/orders
  # a demo token (role reader, expires 2100, signed with deploy/examples/secrets/demo-hs256.key)
  USER_TOKEN=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoiZGVtby1hcGkiLCJzdWIiOiJkZW1vLXVzZXIiLCJyb2xlcyI6WyJyZWFkZXIiXSwiZXhwIjo0MTAyNDQ0ODAwfQ.2519JBw_1xUputPd5Sys2vxSj4gsR0pnRiFL18dLOeU
  curl -i http://127.0.0.1:8080/api/orders -H "Authorization: Bearer $USER_TOKEN"   # 200, X-Auth-* headers upstream
  curl -i http://127.0.0.1:8080/admin/panel -H "Authorization: Bearer $USER_TOKEN"  # 403: needs role admin
  # a session: log in as alice (role admin), then use the cookie
  curl -i -c /tmp/gh.jar -d 'username=alice&password=demo-password' http://127.0.0.1:8080/login
  curl -i -b /tmp/gh.jar http://127.0.0.1:8080/admin/panel                            # 200
  curl -i -b /tmp/gh.jar -X POST http://127.0.0.1:8080/logout                         # 204
  # no route: 404 (default deny); climbing above /: 400
  curl -i http://127.0.0.1:8080/nothing-here
  curl -i 'http://127.0.0.1:8080/docs/%2e%2e/%2e%2e/x'
  # what would happen, without a server; the policy tests of this config
  .build/release/gatehouse test --config deploy/examples/quickstart.yaml deploy/examples/policy-tests.yaml
  .build/release/gatehouse explain --config deploy/examples/quickstart.yaml GET /admin/panel --header "Authorization: Bearer $USER_TOKEN"
  curl -s http://127.0.0.1:9901/metrics | head

Ctrl-C stops the gateway and the demo upstream.
TRY
wait $gw_pid
