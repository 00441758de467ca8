#!/usr/bin/env bash
# Memory of idle keep-alive clients: gatehouse's RSS (one worker, run.sh's config) before and
# while COUNT clients (default 10,000) each made one request and stay connected, idle. Rows:
# the build with its own libevent allocator, the same build with glibc's for libevent
# (GATEHOUSE_EVENT_ALLOCATOR=libc), and BASELINE_BIN when given. 127.0.0.1 only; bounded (each
# row holds the clients for HOLD seconds at most).
#
#   deploy/bench/idle.sh
#   COUNT=5000 deploy/bench/idle.sh
#   BASELINE_BIN=/tmp/old/gatehouse deploy/bench/idle.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COUNT="${COUNT:-10000}"
HOLD="${HOLD:-30}"
PIN=none NICE=0

ensure_tools nginx nginx-light curl curl ss iproute2 python3 python3
ensure_gatehouse
choose_ports 28000
BENCH_DIR=$(mktemp -d /tmp/gh-idle.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
start_upstream "$BENCH_DIR"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

row() { # label binary [env assignment]
    local label=$1 bin=$2 assign=${3:-} pid before during fifo
    GATEHOUSE_BIN=$bin write_gatehouse_conf "$BENCH_DIR"
    port_free "$GATEHOUSE_PORT" || die "port $GATEHOUSE_PORT busy"
    if [ -n "$assign" ]; then
        spawn proxy "$BENCH_DIR/gatehouse/stderr.log" env "$assign" "$bin" run --config "$BENCH_DIR/gatehouse/gatehouse.yaml"
    else
        spawn proxy "$BENCH_DIR/gatehouse/stderr.log" "$bin" run --config "$BENCH_DIR/gatehouse/gatehouse.yaml"
    fi
    pid=$SPAWNED
    wait_port "$GATEHOUSE_PORT" || die "gatehouse did not start: $(cat "$BENCH_DIR/gatehouse/stderr.log")"
    curl -s -o /dev/null "http://127.0.0.1:$GATEHOUSE_PORT/warm"
    sleep 0.5
    before=$(rss_kib "$pid")
    fifo="$BENCH_DIR/hold.$label"
    mkfifo "$fifo"
    python3 "$HERE/idle_clients.py" "$GATEHOUSE_PORT" "$COUNT" "$HOLD" <"$fifo" >"$BENCH_DIR/clients.$label" 2>&1 &
    local clients=$!
    exec 7>"$fifo"
    local i
    for ((i = 0; i < 1200; i++)); do
        grep -q '^ready' "$BENCH_DIR/clients.$label" 2>/dev/null && break
        kill -0 "$clients" 2>/dev/null || die "clients failed: $(cat "$BENCH_DIR/clients.$label")"
        sleep 0.1
    done
    grep -q '^ready' "$BENCH_DIR/clients.$label" || die "clients not ready in time"
    sleep 1
    during=$(rss_kib "$pid")
    exec 7>&-
    wait "$clients" 2>/dev/null || true
    stop_pid "$pid"
    printf '%-22s %10.1f %14.1f %14.1f %12.2f\n' "$label" "$(echo "$before / 1024" | bc -l)" \
        "$(echo "$during / 1024" | bc -l)" "$(echo "($during - $before) / 1024" | bc -l)" \
        "$(echo "($during - $before) / $COUNT" | bc -l)"
}

echo "$COUNT idle keep-alive clients, one request each, one worker ($GATEHOUSE_BIN)"
printf '%-22s %10s %14s %14s %12s\n' "row" "RSS MiB" "with clients" "growth MiB" "KiB/client"
row gatehouse "$GATEHOUSE_BIN"
row gatehouse-libc-alloc "$GATEHOUSE_BIN" GATEHOUSE_EVENT_ALLOCATOR=libc
if [ -n "${BASELINE_BIN:-}" ]; then row baseline "$BASELINE_BIN"; fi
