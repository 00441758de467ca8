#!/usr/bin/env bash
# Instructions per request of gatehouse (valgrind --tool=callgrind): its public route against
# its HS256 route with a role check and a different token every request, i.e. jwt.sh's
# gh-public and gh-hs256-nc counted in instructions instead of CPU time. Instruction counts do
# not depend on what else runs on the machine, so this measures a change on a busy machine,
# where jwt.sh cannot. 127.0.0.1 only. See README.md in this folder ("callgrind-jwt.sh").
#
#   deploy/bench/callgrind-jwt.sh
#   REQUESTS=8192 deploy/bench/callgrind-jwt.sh           # more requests per phase
#   GATEHOUSE_BIN=/tmp/other/gatehouse deploy/bench/callgrind-jwt.sh
#   TOP=40 KEEP=1 deploy/bench/callgrind-jwt.sh           # more functions; keep the callgrind files
#   TOP_PHASE=public deploy/bench/callgrind-jwt.sh        # list the public phase's top functions
#                                        (public, hs256-nc or rs256-warm)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

REQUESTS="${REQUESTS:-4096}"      # measured requests per phase
# HS256 requests (distinct tokens) before measuring, so that the verified-token cache is as full
# as under jwt.sh's long rotation; the measured tokens come after them and are all new.
WARMUP_TOKENS="${WARMUP_TOKENS:-4096}"
TOP="${TOP:-25}"                  # functions listed for the TOP_PHASE phase (0: none)
TOP_PHASE="${TOP_PHASE:-hs256-nc}" # public | hs256-nc
PIN=none NICE=0                   # instruction counts do not depend on scheduling

ensure_tools valgrind valgrind objcopy binutils nginx nginx-light curl curl ss iproute2 python3 python3
python3 -c 'import jwt, cryptography' 2>/dev/null || {
    log "installing: python3-jwt python3-cryptography"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq python3-jwt python3-cryptography >/dev/null
}
ensure_gatehouse

choose_ports 27000
BENCH_DIR=$(mktemp -d /tmp/gh-callgrind-jwt.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
KEYS="$BENCH_DIR/keys"

log "keys and $((WARMUP_TOKENS + REQUESTS)) HS256 tokens"
python3 "$HERE/jwt_tokens.py" "$KEYS" $((WARMUP_TOKENS + REQUESTS)) 1 1 || die "token generation failed"
start_upstream "$BENCH_DIR"

write_gatehouse_jwt_conf "$BENCH_DIR"
port_free "$GATEHOUSE_PORT" || die "port $GATEHOUSE_PORT busy (set BASE_PORT)"
# Valgrind 3.19 gives up on the DWARF 5 that Swift's toolchain writes; function names come from
# the symbol table, which a copy without debug sections keeps.
objcopy --strip-debug "$GATEHOUSE_BIN" "$BENCH_DIR/gatehouse-bin"
OUT="$BENCH_DIR/callgrind.out"
spawn proxy "$BENCH_DIR/gatehouse/stderr.log" valgrind --tool=callgrind --callgrind-out-file="$OUT" \
    "$BENCH_DIR/gatehouse-bin" run --config "$BENCH_DIR/gatehouse/gatehouse.yaml"
GH_PID=$SPAWNED
for ((i = 0; i < 120; i++)); do # start-up under valgrind takes seconds
    kill -0 "$GH_PID" 2>/dev/null || die "gatehouse under valgrind exited: $(tail -n 20 "$BENCH_DIR/gatehouse/stderr.log")"
    wait_port "$GATEHOUSE_PORT" 1 && break
done
wait_port "$GATEHOUSE_PORT" 1 || die "gatehouse did not start: $(tail -n 20 "$BENCH_DIR/gatehouse/stderr.log")"

requests() { # path count [tokens skip]
    python3 "$HERE/http_sequence.py" "$GATEHOUSE_PORT" "$@" || die "requests to $1 failed"
}
# Zeroes the counters, runs a phase, dumps its counts into "$OUT.N"; prints the instructions.
phase() { # name path [tokens skip]
    local name=$1 path=$2 before file
    shift 2
    callgrind_control -z "$GH_PID" >/dev/null 2>&1 || die "callgrind_control -z failed"
    log "$name: $REQUESTS requests to $path"
    requests "$path" "$REQUESTS" "$@"
    before=$(ls "$OUT".* 2>/dev/null | wc -l)
    callgrind_control -d "$name" "$GH_PID" >/dev/null 2>&1 || die "callgrind_control -d failed"
    file=$(ls -t "$OUT".* | head -n1)
    [ "$(ls "$OUT".* | wc -l)" -gt "$before" ] || die "no callgrind dump for $name"
    cp "$file" "$BENCH_DIR/$name.callgrind"
    awk '/^(summary|totals):/ {print $2; exit}' "$file"
}

log "warm-up: 200 public requests, $WARMUP_TOKENS HS256 tokens"
requests /bench 200
requests /hs/bench "$WARMUP_TOKENS" "$KEYS/hs.tokens" 0
PUBLIC=$(phase public /bench)
HS=$(phase hs256-nc /hs/bench "$KEYS/hs.tokens" "$WARMUP_TOKENS")
# RS256 warm: the same token every request (jwt.sh's gh-rs256 row), after one request that
# fills the verified-token cache.
for ((i = 0; i < REQUESTS; i++)); do cat "$KEYS/rs.token"; echo; done >"$BENCH_DIR/rs.same"
requests /rs/bench 1 "$BENCH_DIR/rs.same" 0
RS=$(phase rs256-warm /rs/bench "$BENCH_DIR/rs.same" 0)
stop_pid "$GH_PID"

if [ "$TOP" != 0 ]; then
    echo
    echo "$TOP_PHASE phase: top $TOP functions by instructions (self), per request"
    # The thread's outer frames, still running at the dump, come out with (nearly) all of the
    # phase: they are left out.
    callgrind_annotate --inclusive=no --threshold=100 "$BENCH_DIR/$TOP_PHASE.callgrind" 2>/dev/null \
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
echo "$REQUESTS requests per phase, one kept-alive connection, after $WARMUP_TOKENS distinct HS256 tokens"
awk -v p="$PUBLIC" -v h="$HS" -v r="$RS" -v n="$REQUESTS" 'BEGIN {
    printf "public        %8.0f instructions/request\n", p / n
    printf "hs256-nc      %8.0f instructions/request\n", h / n
    printf "difference    %+8.0f instructions/request\n", (h - p) / n
    printf "rs256-warm    %8.0f instructions/request (%.2fx public)\n", r / n, r / p }'
