#!/usr/bin/env bash
# jwt.sh's gh-rs256 against gh-public measured at the same time instead of one after the other:
# two gatehouse processes with jwt.sh's config, both pinned to CPU 0, each driven by its own wrk
# (on CPU 1 with the upstream), one sending gh-public's requests and the other gh-rs256's (the
# same token every request: the cache is warm). Whatever this machine's speed does during a
# round, it does to both; the ratio of their CPU per request is what is left. Every round the
# two processes swap routes, so that nothing about one process (where its memory landed, say)
# counts for one route. 127.0.0.1 only; bounded by ROUNDS x (WARMUP + DURATION).
#
#   deploy/bench/pair.sh                          # 10 rounds of 10 s (lib.sh's DURATION, WARMUP)
#   ROUNDS=20 DURATION=3s deploy/bench/pair.sh
#   OTHER=public-tok deploy/bench/pair.sh         # control: the public route with gh-rs256's
#                                                 # Authorization header sent anyway (jwt.sh's gh-public-tok)
#   GATEHOUSE_BIN=/tmp/other/gatehouse deploy/bench/pair.sh
#
# This is not the issue's measure (jwt.sh, rounds one row after another, with nginx and
# HAProxy); it is the same ratio without the drift between rows. See README.md ("Issue 16,
# sixth session").
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

ROUNDS="${ROUNDS:-10}"
OTHER="${OTHER:-rs256}"   # what runs beside gh-public: rs256 | public-tok
case "$OTHER" in rs256 | public-tok) ;; *) die "OTHER: rs256 or public-tok" ;; esac
[ "$(nproc)" -ge 2 ] || { [ "$PIN" = none ] || { log "one CPU: PIN=none"; PIN=none; }; }

ensure_tools wrk wrk curl curl taskset util-linux pgrep procps ss iproute2 python3 python3
python3 -c 'import jwt, cryptography' 2>/dev/null || die "python3 needs PyJWT and cryptography (jwt.sh installs them)"
ensure_gatehouse
choose_ports 30000
BENCH_DIR=$(mktemp -d /tmp/gh-pair.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
KEYS="$BENCH_DIR/keys"

python3 "$HERE/jwt_tokens.py" "$KEYS" 20 20 20 || die "token generation failed"
TOKEN=$(head -n1 "$KEYS/rs.token")
start_upstream "$BENCH_DIR"

# Two gatehouse processes: the jwt.sh config at GATEHOUSE_PORT and at GATEHOUSE_PORT + 1.
declare -a PORT PID
for side in 0 1; do
    GATEHOUSE_PORT=$((BASE_PORT + 80 + side))
    write_gatehouse_jwt_conf "$BENCH_DIR/side$side"
    spawn proxy "$BENCH_DIR/side$side/gatehouse/stderr.log" "$GATEHOUSE_BIN" run --config "$BENCH_DIR/side$side/gatehouse/gatehouse.yaml"
    PID[$side]=$SPAWNED
    PORT[$side]=$GATEHOUSE_PORT
    wait_port "$GATEHOUSE_PORT" || die "gatehouse did not start: $(cat "$BENCH_DIR/side$side/gatehouse/stderr.log")"
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GATEHOUSE_PORT/bench")" = 200 ] || die "public route: not 200"
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GATEHOUSE_PORT/rs/bench")" = 200 ] \
        || die "RS256 route: not 200"
done

wrk_route() { # port route duration outfile -> background pid in WRK_PID
    local args=("http://127.0.0.1:$1/bench")
    [ "$2" = rs256 ] && args=(-H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/rs/bench")
    [ "$2" = public-tok ] && args=(-H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/bench")
    # shellcheck disable=SC2046
    $(pin load) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$3" "${args[@]}" >"$4" 2>&1 &
    WRK_PID=$!
}

ratios=()
printf '%-6s %-9s %13s %13s %13s %13s %11s %11s %7s\n' round "public on" "public us/req" "$OTHER us/req" "public kernel" "$OTHER kernel" "public r/s" "$OTHER r/s" ratio >"$BENCH_DIR/table.txt"
for ((round = 1; round <= ROUNDS; round++)); do
    public_side=$(((round + 1) % 2)) rs_side=$((round % 2))
    wrk_route "${PORT[$public_side]}" public "$WARMUP" /dev/null; w0=$WRK_PID
    wrk_route "${PORT[$rs_side]}" "$OTHER" "$WARMUP" /dev/null; w1=$WRK_PID
    wait "$w0" "$w1"
    p0=$(cpu_ticks $(pid_tree "${PID[$public_side]}")) r0=$(cpu_ticks $(pid_tree "${PID[$rs_side]}"))
    pk0=$(sys_ticks $(pid_tree "${PID[$public_side]}")) rk0=$(sys_ticks $(pid_tree "${PID[$rs_side]}"))
    wrk_route "${PORT[$public_side]}" public "$DURATION" "$BENCH_DIR/public-$round.txt"; w0=$WRK_PID
    wrk_route "${PORT[$rs_side]}" "$OTHER" "$DURATION" "$BENCH_DIR/rs256-$round.txt"; w1=$WRK_PID
    wait "$w0" || die "wrk failed: $(cat "$BENCH_DIR/public-$round.txt")"
    wait "$w1" || die "wrk failed: $(cat "$BENCH_DIR/rs256-$round.txt")"
    p1=$(cpu_ticks $(pid_tree "${PID[$public_side]}")) r1=$(cpu_ticks $(pid_tree "${PID[$rs_side]}"))
    pk1=$(sys_ticks $(pid_tree "${PID[$public_side]}")) rk1=$(sys_ticks $(pid_tree "${PID[$rs_side]}"))
    pn=$(awk '/requests in/ {print $1; exit}' "$BENCH_DIR/public-$round.txt")
    rn=$(awk '/requests in/ {print $1; exit}' "$BENCH_DIR/rs256-$round.txt")
    [ -n "$pn" ] && [ "$pn" -gt 0 ] && [ -n "$rn" ] && [ "$rn" -gt 0 ] || die "round $round: wrk served no request"
    for f in public rs256; do
        ! grep -q "Non-2xx" "$BENCH_DIR/$f-$round.txt" || die "round $round: $f answered errors: $(cat "$BENCH_DIR/$f-$round.txt")"
    done
    line=$(awk -v p=$((p1 - p0)) -v r=$((r1 - r0)) -v pk=$((pk1 - pk0)) -v rk=$((rk1 - rk0)) -v pn="$pn" -v rn="$rn" \
        -v t="$CLK_TCK" -v d="$DURATION" -v side="$public_side" -v round="$round" 'BEGIN {
        pu = p / t * 1e6 / pn; ru = r / t * 1e6 / rn; s = d + 0
        printf "%-6d %-9s %13.2f %13.2f %13.2f %13.2f %11.0f %11.0f %7.3f\n", round, "gh" side, pu, ru,
            pk / t * 1e6 / pn, rk / t * 1e6 / rn, pn / s, rn / s, ru / pu }')
    echo "$line" >>"$BENCH_DIR/table.txt"
    log "$line"
    ratios+=("$(echo "$line" | awk '{print $NF}')")
done

echo
echo "pair.sh: gh-$OTHER and gh-public at the same time, both gatehouse processes on CPU 0; wrk -t$THREADS -c$CONNECTIONS -d$DURATION each (warm-up $WARMUP)"
echo "gatehouse: $GATEHOUSE_BIN"
cat "$BENCH_DIR/table.txt"
printf '%s\n' "${ratios[@]}" | sort -n | awk -v other="$OTHER" '{v[NR] = $1} END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%s / public CPU per request: median %.3f over %d rounds (min %.3f, max %.3f)%s\n", other, m, NR, v[1], v[NR],
        other == "rs256" ? " (goal <= 1.10)" : "" }'
