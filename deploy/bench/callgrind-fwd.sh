#!/usr/bin/env bash
# Instructions per request (valgrind --tool=callgrind) of a forward-auth decision against a
# proxied request: fwd.sh's gh-fwd-rs256 and gh-public, plus the proxied RS256 route, counted
# in instructions instead of CPU time, so usable on a busy machine. 127.0.0.1 only. See
# README.md in this folder ("Forward auth").
#
#   deploy/bench/callgrind-fwd.sh
#   REQUESTS=8192 TOP=30 deploy/bench/callgrind-fwd.sh
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

REQUESTS="${REQUESTS:-3000}"      # measured requests per phase
TOP="${TOP:-20}"                  # functions listed for the decision phase (0: none)
PIN=none NICE=0                   # instruction counts do not depend on scheduling

ensure_tools valgrind valgrind objcopy binutils nginx nginx-light curl curl ss iproute2 python3 python3
if ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
    log "installing: python3-jwt python3-cryptography"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-jwt python3-cryptography >/dev/null
fi
ensure_gatehouse

choose_ports 26500
BENCH_DIR=$(mktemp -d /tmp/gh-callgrind-fwd.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
KEYS="$BENCH_DIR/keys"
python3 "$HERE/jwt_tokens.py" "$KEYS" 1 1 1 >/dev/null || die "token generation failed"
start_upstream "$BENCH_DIR"

write_gatehouse_jwt_conf "$BENCH_DIR"
printf 'forward_auth: { style: original }\n' >>"$BENCH_DIR/gatehouse/gatehouse.yaml"
port_free "$GATEHOUSE_PORT" || die "port $GATEHOUSE_PORT busy (set BASE_PORT)"
# Valgrind 3.19 cannot read Swift's DWARF 5: a copy without debug sections keeps the symbols.
objcopy --strip-debug "$GATEHOUSE_BIN" "$BENCH_DIR/gatehouse-bin"
OUT="$BENCH_DIR/callgrind.out"
spawn proxy "$BENCH_DIR/gatehouse/stderr.log" valgrind --tool=callgrind --callgrind-out-file="$OUT" \
    "$BENCH_DIR/gatehouse-bin" run --config "$BENCH_DIR/gatehouse/gatehouse.yaml"
GH_PID=$SPAWNED
for ((i = 0; i < 120; i++)); do
    kill -0 "$GH_PID" 2>/dev/null || die "gatehouse under valgrind exited: $(tail -n 20 "$BENCH_DIR/gatehouse/stderr.log")"
    wait_port "$GATEHOUSE_PORT" 1 && break
done
wait_port "$GATEHOUSE_PORT" 1 || die "gatehouse did not start"

TOKEN=$(head -n1 "$KEYS/rs.token")
DECISION=("X-Original-Method: GET" "X-Original-URI: /rs/bench" "X-Forwarded-Host: bench" "Authorization: Bearer $TOKEN")
requests() { # path count [header...]
    python3 "$HERE/http_sequence.py" "$GATEHOUSE_PORT" "$1" "$2" --headers "${@:3}" || die "requests to $1 failed"
}
phase() { # name path [header...]
    local name=$1 before file
    shift
    callgrind_control -z "$GH_PID" >/dev/null 2>&1 || die "callgrind_control -z failed"
    log "$name: $REQUESTS requests to $1"
    requests "$1" "$REQUESTS" "${@:2}"
    before=$(ls "$OUT".* 2>/dev/null | wc -l)
    callgrind_control -d "$name" "$GH_PID" >/dev/null 2>&1 || die "callgrind_control -d failed"
    file=$(ls -t "$OUT".* | head -n1)
    [ "$(ls "$OUT".* | wc -l)" -gt "$before" ] || die "no callgrind dump for $name"
    cp "$file" "$BENCH_DIR/$name.callgrind"
    awk '/^(summary|totals):/ {print $2; exit}' "$file"
}

log "warm-up: 200 requests of each kind"
requests /bench 200
requests /_gatehouse/auth 200 "${DECISION[@]}"
requests /rs/bench 200 "Authorization: Bearer $TOKEN"
PUBLIC=$(phase public /bench)
FWD=$(phase fwd-rs256 /_gatehouse/auth "${DECISION[@]}")
RS=$(phase proxied-rs256 /rs/bench "Authorization: Bearer $TOKEN")
stop_pid "$GH_PID"

if [ "$TOP" != 0 ]; then
    echo
    echo "decision phase: top $TOP functions by instructions (self), per request"
    callgrind_annotate --inclusive=no --threshold=100 "$BENCH_DIR/fwd-rs256.callgrind" 2>/dev/null \
        | awk -v n="$REQUESTS" -v top="$TOP" '
            /^-+$/ { dashes++; next }
            dashes >= 3 && $1 ~ /^[0-9,]+$/ && shown < top && match($0, /\( *[0-9.]+%\)/) {
                if (substr($0, RSTART + 1, RLENGTH - 3) + 0 > 90) next
                name = substr($0, RSTART + RLENGTH); sub(/^ +/, "", name)
                v = $1; gsub(",", "", v); printf "%9.0f  %s\n", v / n, name; shown++ }' \
        | { if command -v swift >/dev/null; then swift demangle --simplified; else cat; fi; }
fi

echo
echo "gatehouse: $GATEHOUSE_BIN; callgrind, user-space instructions of the gatehouse process (all threads)"
echo "$REQUESTS requests per phase, one kept-alive connection, the same RS256 token (warm cache)"
awk -v p="$PUBLIC" -v f="$FWD" -v r="$RS" -v n="$REQUESTS" 'BEGIN {
    printf "public (proxied)       %8.0f instructions/request\n", p / n
    printf "proxied RS256 + role   %8.0f instructions/request\n", r / n
    printf "decision RS256 + role  %8.0f instructions/request (%.2fx public; no upstream I/O, so CPU time is lower)\n", f / n, f / p }'
