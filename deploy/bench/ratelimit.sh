#!/usr/bin/env bash
# What a rate limit costs (SPEC §13): an RS256 route with a role check (jwt.sh's gh-rs256, warm
# verified-token cache) against the same route with a `rate_limit` that never trips.
#
# 1. callgrind (deterministic, fit for a busy machine): user-space instructions per request of
#    the gatehouse process, /rs/bench against /rsl/bench, with `rate_limits.store: memory` and
#    then with a redis:// store (gatehouse's side only: Redis's own work is not counted).
# 2. wrk (time-based): with the Redis store, req/s, p50/p99 and gatehouse CPU µs/request for
#    both routes, and redis-server's CPU µs/request on the limited route.
# 127.0.0.1 only; a throwaway redis-server on a free port. See README.md ("ratelimit.sh").
#
#   deploy/bench/ratelimit.sh
#   REQUESTS=8192 deploy/bench/ratelimit.sh      # more requests per callgrind phase
#   SKIP_WRK=1 deploy/bench/ratelimit.sh         # instruction counts only
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

REQUESTS="${REQUESTS:-4096}"
CLK_TCK=$(getconf CLK_TCK)

ensure_tools valgrind valgrind objcopy binutils nginx nginx-light curl curl ss iproute2 python3 python3 \
    redis-server redis-server wrk wrk
python3 -c 'import jwt, cryptography' 2>/dev/null || {
    log "installing: python3-jwt python3-cryptography"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq python3-jwt python3-cryptography >/dev/null
}
ensure_gatehouse

choose_ports 31000
REDIS_PORT=$((GATEHOUSE_PORT + 50))
port_free "$REDIS_PORT" || die "port $REDIS_PORT busy (set BASE_PORT)"
BENCH_DIR=$(mktemp -d /tmp/gh-bench-ratelimit.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
KEYS="$BENCH_DIR/keys"

log "keys and tokens"
python3 "$HERE/jwt_tokens.py" "$KEYS" 1 1 1 >/dev/null || die "token generation failed"
TOKEN=$(cat "$KEYS/rs.token")
printf '%s\n' "$TOKEN" >"$BENCH_DIR/rs.tokens"
for ((i = 1; i < REQUESTS + 200; i++)); do echo "$TOKEN"; done >>"$BENCH_DIR/rs.tokens"
start_upstream "$BENCH_DIR"
UPSTREAM_PID=$SPAWNED
spawn load "$BENCH_DIR/redis.log" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no
REDIS_PID=$SPAWNED
for ((i = 0; i < 100; i++)); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done

# The routes: /rsl/** (a limit that never trips) and /rs/** (no limit); with `none` the same
# two routes and no rate limit anywhere (the baseline: the edge then reads no client facts).
write_conf() { # store|none
    local limit=", rate_limit: { rate: 1000000/s, burst: 1000000, key: subject }"
    local store="rate_limits: { store: \"$1\" }"
    [ "$1" = none ] && { limit=""; store=""; }
    local limited="  - { name: rsl, match: { path: \"/rsl/**\" }, upstream: api, issuers: [rs], require: { roles_any: [admin] }$limit }"
    mkdir -p "$BENCH_DIR/gatehouse"
    cat >"$BENCH_DIR/gatehouse/gatehouse.yaml" <<EOF
server: { listen: ["127.0.0.1:$GATEHOUSE_PORT"], workers: 1 }
upstreams: { api: { targets: ["http://127.0.0.1:$UPSTREAM_PORT"], max_idle_per_worker: 64 } }
jwt:
  issuers:
    - { name: rs, issuer: bench-rs, algorithms: [RS256], jwks_file: $KEYS/jwks.json }
$store
routes:
$limited
  - { name: rs, match: { path: "/rs/**" }, upstream: api, issuers: [rs], require: { roles_any: [admin] } }
access_log: { path: $BENCH_DIR/gatehouse/access.log, format: json }
EOF
    "$GATEHOUSE_BIN" check --config "$BENCH_DIR/gatehouse/gatehouse.yaml" >"$BENCH_DIR/gatehouse/check.txt" 2>&1 \
        || die "gatehouse check failed: $(cat "$BENCH_DIR/gatehouse/check.txt")"
}

requests() { python3 "$HERE/http_sequence.py" "$GATEHOUSE_PORT" "$@" || die "requests to $1 failed"; }

# callgrind: instructions per request of each route under `store` (none: no rate limits).
callgrind_phases() { # store label route...
    write_conf "$1"
    objcopy --strip-debug "$GATEHOUSE_BIN" "$BENCH_DIR/gatehouse-bin"
    local out="$BENCH_DIR/callgrind-$2.out" pid i
    spawn proxy "$BENCH_DIR/gatehouse/stderr-$2.log" valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$BENCH_DIR/gatehouse-bin" run --config "$BENCH_DIR/gatehouse/gatehouse.yaml"
    pid=$SPAWNED
    for ((i = 0; i < 120; i++)); do
        kill -0 "$pid" 2>/dev/null || die "gatehouse under valgrind exited: $(tail -n 20 "$BENCH_DIR/gatehouse/stderr-$2.log")"
        wait_port "$GATEHOUSE_PORT" 1 && break
    done
    local label=$2 name path file
    shift 2
    for name in "$@"; do requests "/$name/bench" 200 "$BENCH_DIR/rs.tokens" 0; done
    for name in "$@"; do
        path="/$name/bench"
        callgrind_control -z "$pid" >/dev/null 2>&1 || die "callgrind_control -z failed"
        requests "$path" "$REQUESTS" "$BENCH_DIR/rs.tokens" 0
        callgrind_control -d "$label-$name" "$pid" >/dev/null 2>&1 || die "callgrind_control -d failed"
        sleep 0.5
        file=$(ls -t "$out".* | head -n1)
        INSTR["$label-$name"]=$(awk '/^(summary|totals):/ {print $2; exit}' "$file")
        cp "$file" "$BENCH_DIR/$label-$name.callgrind"
    done
    stop_pid "$pid"
}

declare -A INSTR
log "callgrind: no rate limit configured, $REQUESTS requests"
callgrind_phases none none rs rsl
log "callgrind: memory store, $REQUESTS requests per route"
callgrind_phases memory memory rs rsl
log "callgrind: redis store, $REQUESTS requests per route"
callgrind_phases "redis://127.0.0.1:$REDIS_PORT/0" redis rs rsl

echo
echo "gatehouse: $GATEHOUSE_BIN; callgrind, user-space instructions of the gatehouse process per request"
echo "RS256 route with roles_any (warm token cache), one kept-alive connection, $REQUESTS requests each"
awk -v n="$REQUESTS" -v brs="${INSTR[none-rs]}" -v brl="${INSTR[none-rsl]}" -v mrs="${INSTR[memory-rs]}" \
    -v mrl="${INSTR[memory-rsl]}" -v rrs="${INSTR[redis-rs]}" -v rrl="${INSTR[redis-rsl]}" 'BEGIN {
    printf "%-46s %9s %9s\n", "", "instr/req", "added"
    printf "%-46s %9.0f %9s\n", "no rate limit in the config: /rsl", brl / n, "(base)"
    printf "%-46s %9.0f %9s\n", "no rate limit in the config: /rs", brs / n, "(base)"
    printf "%-46s %9.0f %+9.0f\n", "memory store: /rsl (limit, never trips)", mrl / n, (mrl - brl) / n
    printf "%-46s %9.0f %+9.0f\n", "memory store: /rs (no limit on this route)", mrs / n, (mrs - brs) / n
    printf "%-46s %9.0f %+9.0f\n", "redis store: /rsl (limit, never trips)", rrl / n, (rrl - brl) / n
    printf "%-46s %9.0f %+9.0f\n", "redis store: /rs (no limit on this route)", rrs / n, (rrs - brs) / n }'

[ "${SKIP_WRK:-0}" = 1 ] && exit 0

# wrk: latency and CPU of the RS256 route without any rate limit, with a memory-store limit
# and with a Redis-store limit (each its own gatehouse process, one at a time).
wrk_run() { # path duration outfile
    # shellcheck disable=SC2046
    $(pin load) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2" --latency -H "Authorization: Bearer $TOKEN" \
        "http://127.0.0.1:$GATEHOUSE_PORT$1" >"$3" 2>&1 || die "wrk failed: $(cat "$3")"
}
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION (PIN=$PIN; machine busy% shows how quiet it was)"
printf "%-30s %9s %7s %7s %10s %10s %8s %6s\n" scenario "req/s" "p50 ms" "p99 ms" "gh us/req" "redis us/r" "busy%" non2xx
for scenario in "none /rs" "memory /rsl" "redis://127.0.0.1:$REDIS_PORT/0 /rsl"; do
    store=${scenario% *}; path=${scenario#* }
    write_conf "$store"
    spawn proxy "$BENCH_DIR/gatehouse/stderr-wrk.log" "$GATEHOUSE_BIN" run --config "$BENCH_DIR/gatehouse/gatehouse.yaml"
    GH_PID=$SPAWNED
    wait_port "$GATEHOUSE_PORT" || die "gatehouse did not start"
    wrk_run "$path/bench" "$WARMUP" "$BENCH_DIR/warmup.txt"
    g0=$(cpu_ticks "$GH_PID"); r0=$(cpu_ticks "$REDIS_PID"); read -r b0 t0 < <(machine_ticks)
    wrk_run "$path/bench" "$DURATION" "$BENCH_DIR/wrk.txt"
    g1=$(cpu_ticks "$GH_PID"); r1=$(cpu_ticks "$REDIS_PID"); read -r b1 t1 < <(machine_ticks)
    label="${store%%:*} $path"
    awk -v label="$label" -v g="$((g1 - g0))" -v r="$((r1 - r0))" -v hz="$CLK_TCK" -v busy="$(((b1 - b0) * 100 / (t1 - t0 + 1)))" '
        /Requests\/sec/ { rps = $2 } /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
        / requests in / { n = $1 } /Non-2xx/ { bad = $NF }
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        END { printf "%-30s %9.0f %7.2f %7.2f %10.1f %10.1f %8d %6d\n", label, rps, ms(p50), ms(p99),
                     g / hz * 1e6 / n, r / hz * 1e6 / n, busy, bad + 0 }' "$BENCH_DIR/wrk.txt"
    stop_pid "$GH_PID"
    sleep 0.5
done
