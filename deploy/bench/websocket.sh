#!/usr/bin/env bash
# WebSocket tunnels (SPEC §12): gatehouse vs nginx's WebSocket proxying in front of the same
# echo upstream (`gatehouse echo`, which answers WebSocket upgrades), on 127.0.0.1 only.
# Reports echoed messages per second and the proxy's CPU time per message (one message each
# way), for 64-byte and 64 KiB messages, and gatehouse's ratio to nginx. See README.md.
#
#   deploy/bench/websocket.sh                         # 8 connections, 10 s per measurement
#   ROUNDS=3 deploy/bench/websocket.sh                # three rounds; medians
#   CONNECTIONS=32 DURATION=20 SIZES="64 65536 1048576" deploy/bench/websocket.sh
#
# The load generator is Python (deploy/bench/ws_load.py, asyncio `websockets`): slower than
# either proxy, so messages/s is the client's figure; CPU per message is the proxy's own.
set -euo pipefail
WS_CONNECTIONS="${CONNECTIONS:-8}"   # read before lib.sh sets its own default (wrk's 32)
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS="${ROUNDS:-1}"
SIZES="${SIZES:-64 65536}"
SECONDS_EACH="${DURATION:-10}"
SECONDS_EACH="${SECONDS_EACH%s}"

ensure_tools nginx nginx-light curl curl taskset util-linux pgrep procps ss iproute2
python3 -c 'import websockets.asyncio.client' 2>/dev/null || python3 -m pip install -q 'websockets>=13'
ensure_gatehouse
[ "$(nproc)" -ge 2 ] || { [ "$PIN" = none ] || { log "one CPU: PIN=none"; PIN=none; }; }

choose_ports 29000
BENCH_DIR=$(mktemp -d /tmp/gh-bench-ws.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM

# The echo upstream: gatehouse echo (its CPU is not counted for either proxy).
spawn load "$BENCH_DIR/echo.log" "$GATEHOUSE_BIN" echo --listen "127.0.0.1:$UPSTREAM_PORT"
ECHO_PID=$SPAWNED
wait_port "$UPSTREAM_PORT" || die "gatehouse echo did not start: $(cat "$BENCH_DIR/echo.log")"

mkdir -p "$BENCH_DIR/gatehouse"
cat >"$BENCH_DIR/gatehouse/gatehouse.yaml" <<YAML
server: { listen: ["127.0.0.1:$GATEHOUSE_PORT"], workers: 1 }
upstreams: { api: { targets: ["http://127.0.0.1:$UPSTREAM_PORT"], max_idle_per_worker: 64 } }
routes: [ { name: live, match: { path: "/**" }, upstream: api, auth: none, websocket: true } ]
access_log: { path: $BENCH_DIR/gatehouse/access.log, format: json }
YAML
spawn proxy "$BENCH_DIR/gatehouse/stderr.log" "$GATEHOUSE_BIN" run --config "$BENCH_DIR/gatehouse/gatehouse.yaml"
GATEHOUSE_PID=$SPAWNED
wait_port "$GATEHOUSE_PORT" || die "gatehouse did not start: $(cat "$BENCH_DIR/gatehouse/stderr.log")"

# nginx's documented WebSocket proxying: HTTP/1.1 upstream, Upgrade and Connection set.
mkdir -p "$BENCH_DIR/nginx/logs" "$BENCH_DIR/nginx/tmp"
cat >"$BENCH_DIR/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process on;
pid $BENCH_DIR/nginx/nginx.pid;
error_log $BENCH_DIR/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log $BENCH_DIR/nginx/logs/access.log;
    client_body_temp_path $BENCH_DIR/nginx/tmp/body;
    proxy_temp_path $BENCH_DIR/nginx/tmp/proxy;
    fastcgi_temp_path $BENCH_DIR/nginx/tmp/fastcgi;
    uwsgi_temp_path $BENCH_DIR/nginx/tmp/uwsgi;
    scgi_temp_path $BENCH_DIR/nginx/tmp/scgi;
    map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
    server {
        listen 127.0.0.1:$NGINX_PROXY_PORT;
        location / {
            proxy_pass http://127.0.0.1:$UPSTREAM_PORT;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_read_timeout 1h;
        }
    }
}
CONF
spawn proxy "$BENCH_DIR/nginx/stderr.log" nginx -p "$BENCH_DIR/nginx" -c "$BENCH_DIR/nginx/nginx.conf" -e "$BENCH_DIR/nginx/logs/error.log"
NGINX_PID=$SPAWNED
wait_port "$NGINX_PROXY_PORT" || die "nginx did not start: $(cat "$BENCH_DIR/nginx/logs/error.log" 2>/dev/null)"

declare -A CPU RATE ALL_CPU ALL_RATE

# measure NAME PORT PID SIZE: a 2 s warm-up, then SECONDS_EACH of load.
measure() {
    local name=$1 port=$2 pid=$3 size=$4 out="$BENCH_DIR/load-$1-$4.json" p0 p1
    # shellcheck disable=SC2046
    $(pin load) python3 "$REPO/deploy/bench/ws_load.py" "ws://127.0.0.1:$port/bench" "$WS_CONNECTIONS" 2 "$size" >/dev/null
    p0=$(cpu_ticks $(pid_tree "$pid"))
    # shellcheck disable=SC2046
    $(pin load) python3 "$REPO/deploy/bench/ws_load.py" "ws://127.0.0.1:$port/bench" "$WS_CONNECTIONS" "$SECONDS_EACH" "$size" >"$out"
    p1=$(cpu_ticks $(pid_tree "$pid"))
    read -r messages seconds errors < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["messages"], d["seconds"], d["errors"])' "$out")
    [ "$errors" = 0 ] || log "$name $size B: $errors client errors (figures suspect)"
    [ "$messages" -gt 0 ] || die "$name $size B: no message echoed"
    CPU[$name/$size]=$(awk -v t=$((p1 - p0)) -v hz="$CLK_TCK" -v n="$messages" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    RATE[$name/$size]=$(awk -v n="$messages" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }')
    ALL_CPU[$name/$size]+="${CPU[$name/$size]} "
    ALL_RATE[$name/$size]+="${RATE[$name/$size]} "
    log "$name, $size B: ${RATE[$name/$size]} msg/s, ${CPU[$name/$size]} µs proxy CPU per message"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for ((round = 1; round <= ROUNDS; round++)); do
    [ "$ROUNDS" = 1 ] || log "round $round of $ROUNDS"
    for size in $SIZES; do
        measure gatehouse "$GATEHOUSE_PORT" "$GATEHOUSE_PID" "$size"
        measure nginx "$NGINX_PROXY_PORT" "$NGINX_PID" "$size"
    done
done

printf '\n%-10s %10s %12s %16s %10s\n' proxy size "msg/s" "CPU/msg (µs)" "vs nginx"
for size in $SIZES; do
    nginx_cpu=$(echo "${ALL_CPU[nginx/$size]}" | median)
    for name in gatehouse nginx; do
        cpu=$(echo "${ALL_CPU[$name/$size]}" | median)
        rate=$(echo "${ALL_RATE[$name/$size]}" | median)
        printf '%-10s %10s %12s %16s %9.2fx\n' "$name" "$size" "$rate" "$cpu" "$(awk -v a="$cpu" -v b="$nginx_cpu" 'BEGIN { print a / b }')"
    done
done
echo "connections $WS_CONNECTIONS, ${SECONDS_EACH}s each, rounds $ROUNDS; gatehouse: one worker, JSON access log (one line per tunnel)"
