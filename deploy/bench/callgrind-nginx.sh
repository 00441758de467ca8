#!/usr/bin/env bash
# Instructions per proxied request of run.sh's nginx proxy (valgrind --tool=callgrind), to set
# beside callgrind-jwt.sh's "public" figure for gatehouse: the same upstream, the same request
# sequence (http_sequence.py: REQUESTS GETs on one kept-alive connection after 200 warm-up
# requests), nginx with its JSON access log (64 KiB buffer) as in run.sh, run as one process
# (master_process off) so that the process under callgrind is the one that serves.
# 127.0.0.1 only. See README.md in this folder ("callgrind-jwt.sh").
#
#   deploy/bench/callgrind-nginx.sh
#   REQUESTS=8192 deploy/bench/callgrind-nginx.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

REQUESTS="${REQUESTS:-4096}"
ensure_tools nginx nginx-light valgrind valgrind python3 python3 ss iproute2

choose_ports 27500
BENCH_DIR=$(mktemp -d /tmp/gh-callgrind-nginx.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM

start_upstream "$BENCH_DIR"
write_nginx_proxy_conf "$BENCH_DIR"
sed -i 's/^master_process on;/master_process off;/' "$BENCH_DIR/nginx-proxy/nginx.conf"
port_free "$NGINX_PROXY_PORT" || die "port $NGINX_PROXY_PORT busy (set BASE_PORT)"
OUT="$BENCH_DIR/callgrind.out"
spawn proxy "$BENCH_DIR/nginx-proxy/stderr.log" valgrind --tool=callgrind --callgrind-out-file="$OUT" \
    nginx -p "$BENCH_DIR/nginx-proxy" -c "$BENCH_DIR/nginx-proxy/nginx.conf" -e "$BENCH_DIR/nginx-proxy/logs/error.log"
NGX_PID=$SPAWNED
for ((i = 0; i < 60; i++)); do
    kill -0 "$NGX_PID" 2>/dev/null || die "nginx under valgrind exited: $(tail -n 20 "$BENCH_DIR/nginx-proxy/stderr.log")"
    wait_port "$NGINX_PROXY_PORT" 1 && break
done
wait_port "$NGINX_PROXY_PORT" 1 || die "nginx did not start"

python3 "$HERE/http_sequence.py" "$NGINX_PROXY_PORT" /bench 200 || die "warm-up failed"
callgrind_control -z "$NGX_PID" >/dev/null 2>&1 || die "callgrind_control -z failed"
log "public: $REQUESTS requests to /bench"
python3 "$HERE/http_sequence.py" "$NGINX_PROXY_PORT" /bench "$REQUESTS" || die "requests failed"
callgrind_control -d public "$NGX_PID" >/dev/null 2>&1 || die "callgrind_control -d failed"
FILE=$(ls -t "$OUT".* | head -n1)
TOTAL=$(awk '/^(summary|totals):/ {print $2; exit}' "$FILE")
stop_pid "$NGX_PID"

echo
echo "nginx $(nginx -v 2>&1 | sed 's/.*\///'): callgrind, user-space instructions of the serving process"
awk -v t="$TOTAL" -v n="$REQUESTS" 'BEGIN { printf "public        %8.0f instructions/request\n", t / n }'
