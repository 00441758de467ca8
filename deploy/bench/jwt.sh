#!/usr/bin/env bash
# JWT routes: what an authenticated request with a role check costs in gatehouse (RS256, ES256,
# HS256; verified-token cache warm, and uncached with a different token every request) against
# gatehouse's own public route, and against HAProxy's jwt_verify on the same tokens and role
# check. Same upstream, pinning, priority and CPU accounting as run.sh (lib.sh). 127.0.0.1 only.
# See README.md in this folder ("JWT routes").
#
#   deploy/bench/jwt.sh                          # every scenario, -t1 -c32 -d10s, 2 s warm-up each
#   ROUNDS=3 deploy/bench/jwt.sh                 # three rounds; medians and per-round ratios
#   RESTART=0 ROUNDS=15 DURATION=3s WARMUP=1s deploy/bench/jwt.sh   # many short rounds, proxies kept
#   ONLY="gh-public gh-rs256 gh-hs256-nc" deploy/bench/jwt.sh   # a subset (names below)
#   GATEHOUSE_BIN=/tmp/other/gatehouse deploy/bench/jwt.sh
#
# Scenarios (ONLY):
#   gh-public      gatehouse, route with auth: none (the baseline of every ratio)
#   gh-rs256 gh-es256 gh-hs256
#                  gatehouse, route with issuers: [x] and require: {roles_any: [admin]};
#                  wrk sends the same token every request: the per-worker cache is warm
#   gh-hs256-lua   control: gh-hs256 (warm) but driven by jwt_rotate.lua over a one-token file,
#                  i.e. the -nc rows' way of sending, without their cache misses
#   gh-rs256-nc gh-es256-nc gh-hs256-nc
#                  the same routes, every request a different valid token (jwt_rotate.lua over
#                  TOKENS_HS / TOKENS_RS / TOKENS_ES distinct tokens, > the 4096-entry cache):
#                  a full verification per request ("nc": not cached)
#   gh-intro       gatehouse, route with issuers: [intro] and require: {roles_any: [admin]}; an
#                  opaque token checked by introspection (SPEC §14.3) at introspection_stub.py,
#                  the same token every request: the per-worker introspection cache is warm
#   hap-public     HAProxy (run.sh's config) with the JWT rules present but not applying
#   hap-rs256 hap-es256 hap-hs256
#                  HAProxy 2.6: alg, jwt_verify, iss, exp and roles[0] == admin on the same
#                  token every request (HAProxy has no verification cache)
#   nginx          nginx as proxy (run.sh's config), public, for reference
#   gh-public-tok nginx-tok
#                  controls: gh-public and nginx, with gh-rs256's `Authorization: Bearer` header
#                  sent anyway (the public route does not read it; both forward it): what the
#                  token's ~700 bytes cost a proxy that does nothing with them, kernel included
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

ALL="gh-public gh-rs256 gh-es256 gh-hs256 gh-hs256-lua gh-hs256-nc gh-rs256-nc gh-es256-nc gh-intro hap-public hap-rs256 hap-es256 hap-hs256 nginx gh-public-tok nginx-tok"
ONLY="${ONLY:-$ALL}"
ROUNDS="${ROUNDS:-1}"
# 1: every scenario of every round starts its proxy afresh (the default). 0: each proxy starts
# once and serves every round (gh-* rows share one gatehouse), so that many short interleaved
# rounds (ROUNDS=15 DURATION=3s WARMUP=1s) average out this machine's drift within a sitting.
RESTART="${RESTART:-1}"
declare -A RUNNING=()
RESULTS="${RESULTS:-}"        # optional: also write the table as TSV to this file
TOKENS_HS="${TOKENS_HS:-200000}"  # distinct tokens for the uncached rows (RS signing is ~1 ms each)
TOKENS_RS="${TOKENS_RS:-20000}"
TOKENS_ES="${TOKENS_ES:-50000}"
for which in $ONLY; do
    case " $ALL " in *" $which "*) ;; *) die "unknown ONLY entry: $which (one of: $ALL)" ;; esac
done
# The per-worker cache holds 4096 tokens, a new one replacing the oldest of its set of four: with
# far more distinct tokens in rotation, a token is long gone when it comes round again.
for n in "HS $TOKENS_HS" "RS $TOKENS_RS" "ES $TOKENS_ES"; do
    set -- $n
    [ "$2" -ge 16384 ] || log "WARNING TOKENS_$1=$2: under 4x the cache size, the $1 -nc row is partly cached"
done

ensure_tools_py() {
    log "installing: python3-jwt python3-cryptography"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq python3-jwt python3-cryptography >/dev/null
}

ensure_tools wrk wrk nginx nginx-light haproxy haproxy curl curl taskset util-linux pgrep procps ss iproute2 python3 python3
python3 -c 'import jwt, cryptography' 2>/dev/null || ensure_tools_py
ensure_gatehouse
[ "$(nproc)" -ge 2 ] || { [ "$PIN" = none ] || { log "one CPU: PIN=none"; PIN=none; }; }

choose_ports 29000
BENCH_DIR=$(mktemp -d /tmp/gh-bench-jwt.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
KEYS="$BENCH_DIR/keys"

to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n }'
}

# --- what each scenario is ------------------------------------------------------------------
proxy_of() { case "$1" in gh-*) echo gatehouse ;; hap-*) echo haproxy ;; nginx | nginx-*) echo nginx ;; esac; }
alg_of() { case "$1" in *rs256*) echo rs ;; *es256*) echo es ;; *hs256*) echo hs ;; *intro*) echo intro ;; *) echo "" ;; esac; }
path_of() { local a; a=$(alg_of "$1"); if [ -n "$a" ]; then echo "/$a/bench"; else echo /bench; fi; }
port_of() {
    case "$(proxy_of "$1")" in
        gatehouse) echo "$GATEHOUSE_PORT" ;; haproxy) echo "$HAPROXY_PORT" ;; nginx) echo "$NGINX_PROXY_PORT" ;;
    esac
}
uncached() { case "$1" in *-nc) return 0 ;; *) return 1 ;; esac; }
carries_token() { case "$1" in *-tok) return 0 ;; *) return 1 ;; esac; }
scripted() { case "$1" in *-nc | *-lua) return 0 ;; *) return 1 ;; esac; }

# --- configs --------------------------------------------------------------------------------
start_gatehouse_jwt() { # dir -> SPAWNED
    write_gatehouse_jwt_conf "$1"
    port_free "$GATEHOUSE_PORT" || die "port $GATEHOUSE_PORT busy (set BASE_PORT)"
    spawn proxy "$1/gatehouse/stderr.log" "$GATEHOUSE_BIN" run --config "$1/gatehouse/gatehouse.yaml"
    wait_port "$GATEHOUSE_PORT" || die "gatehouse did not start: $(cat "$1/gatehouse/stderr.log")"
    if [ -n "${INTRO_PORT:-}" ]; then   # the discovery document first (else the intro row answers 503)
        local i
        for i in $(seq 1 100); do
            [ "$(status_of "$GATEHOUSE_PORT" /intro/bench "$(head -n1 "$KEYS/intro.token")")" = 200 ] && break
            sleep 0.1
        done
    fi
}

# HAProxy: run.sh's config plus, for /rs/ /es/ /hs/, what gatehouse checks there: a Bearer
# token (else 401), the header's alg is the route's, the signature (jwt_verify with the PEM
# public key, or the secret for HS256), iss, exp in the future (else 401), then roles[0] is
# admin (else 403). gatehouse's roles_any looks at every role; HAProxy's JSON query reads one.
write_haproxy_jwt_conf() { # dir
    local secret rules
    secret=$(head -n1 "$KEYS/hs.secret")
    rules=$(cat <<EOF
    acl rs path_beg /rs/
    acl es path_beg /es/
    acl hs path_beg /hs/
    acl jwt path_beg /rs/ /es/ /hs/
    http-request set-var(txn.bearer) http_auth_bearer if jwt
    http-request deny deny_status 401 if jwt !{ var(txn.bearer) -m found }
    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg') if jwt
    http-request deny deny_status 401 if rs !{ var(txn.alg) -m str RS256 }
    http-request deny deny_status 401 if es !{ var(txn.alg) -m str ES256 }
    http-request deny deny_status 401 if hs !{ var(txn.alg) -m str HS256 }
    http-request deny deny_status 401 if rs !{ var(txn.bearer),jwt_verify(txn.alg,"$KEYS/rs.pub.pem") -m int 1 }
    http-request deny deny_status 401 if es !{ var(txn.bearer),jwt_verify(txn.alg,"$KEYS/es.pub.pem") -m int 1 }
    http-request deny deny_status 401 if hs !{ var(txn.bearer),jwt_verify(txn.alg,"$secret") -m int 1 }
    http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('\$.iss') if jwt
    http-request deny deny_status 401 if rs !{ var(txn.iss) -m str bench-rs }
    http-request deny deny_status 401 if es !{ var(txn.iss) -m str bench-es }
    http-request deny deny_status 401 if hs !{ var(txn.iss) -m str bench-hs }
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int') if jwt
    http-request set-var(txn.now) date if jwt
    http-request deny deny_status 401 if jwt !{ var(txn.exp),sub(txn.now) -m int gt 0 }
    http-request deny deny_status 403 if jwt !{ var(txn.bearer),jwt_payload_query('\$.roles[0]') -m str admin }
EOF
)
    write_haproxy_conf "$1" "$rules"
}

start_haproxy_jwt() { # dir -> SPAWNED
    write_haproxy_jwt_conf "$1"
    port_free "$HAPROXY_PORT" || die "port $HAPROXY_PORT busy (set BASE_PORT)"
    spawn proxy "$1/haproxy/stderr.log" haproxy -db -f "$1/haproxy/haproxy.cfg"
    wait_port "$HAPROXY_PORT" || die "haproxy did not start: $(cat "$1/haproxy/stderr.log")"
}

# --- correctness before timing --------------------------------------------------------------
status_of() { # port path [token]
    local args=(-s -o "$BENCH_DIR/check-body.txt" -w '%{http_code}' --max-time 2)
    [ -z "${3:-}" ] || args+=(-H "Authorization: Bearer $3")
    curl "${args[@]}" "http://127.0.0.1:$1$2" || echo 000
}
expect() { # name what want port path [token]
    local got
    got=$(status_of "$4" "$5" "${6:-}")
    [ "$got" = "$3" ] || die "$1: $2 answered $got, expected $3 ($(head -c 200 "$BENCH_DIR/check-body.txt" 2>/dev/null))"
    if [ "$3" = 200 ]; then
        [ "$(cat "$BENCH_DIR/check-body.txt")" = "$BODY" ] || die "$1: $2: unexpected body: $(head -c 200 "$BENCH_DIR/check-body.txt")"
    fi
    CHECKS+=" $2 $got,"
}
# A public scenario answers 200 with the upstream's body; an authenticated one 200 with a valid
# token (and, uncached, with a token of the rotation list), 401 without a token, with a bad
# signature or expired, 403 with the role user only.
verify_scenario() { # name
    local name=$1 port path alg
    port=$(port_of "$name") path=$(path_of "$name") alg=$(alg_of "$name")
    CHECKS=""
    if [ -z "$alg" ]; then
        expect "$name" "public" 200 "$port" "$path"
    else
        expect "$name" "valid" 200 "$port" "$path" "$(head -n1 "$KEYS/$alg.token")"
        uncached "$name" && expect "$name" "listed" 200 "$port" "$path" "$(tail -n1 "$KEYS/$alg.tokens")"
        expect "$name" "none" 401 "$port" "$path"
        expect "$name" "badsig" 401 "$port" "$path" "$(head -n1 "$KEYS/$alg.badsig")"
        expect "$name" "expired" 401 "$port" "$path" "$(head -n1 "$KEYS/$alg.expired")"
        expect "$name" "role-user" 403 "$port" "$path" "$(head -n1 "$KEYS/$alg.user")"
    fi
    log "$name: checked:${CHECKS%,}"
}

# --- load -----------------------------------------------------------------------------------
run_wrk_jwt() { # name duration outfile
    local name=$1 port path alg args=()
    port=$(port_of "$name") path=$(path_of "$name") alg=$(alg_of "$name")
    if [ -n "$alg" ] && uncached "$name"; then
        args=(-s "$HERE/jwt_rotate.lua" "http://127.0.0.1:$port$path" -- "$KEYS/$alg.tokens")
    elif [ -n "$alg" ] && scripted "$name"; then
        args=(-s "$HERE/jwt_rotate.lua" "http://127.0.0.1:$port$path" -- "$KEYS/$alg.token")
    elif [ -n "$alg" ]; then
        args=(-H "Authorization: Bearer $(head -n1 "$KEYS/$alg.token")" "http://127.0.0.1:$port$path")
    elif carries_token "$name"; then
        args=(-H "Authorization: Bearer $(head -n1 "$KEYS/rs.token")" "http://127.0.0.1:$port$path")
    else
        args=("http://127.0.0.1:$port$path")
    fi
    # shellcheck disable=SC2046
    $(pin load) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2" --latency "${args[@]}" >"$3" 2>&1 &
    local pid=$!
    prioritize "$pid"
    wait "$pid" || die "wrk failed: $(cat "$3")"
}

declare -A RPS P50 P99 CPU SYS UPCPU REQS OTHER BUSY BAD
declare -A L_RPS L_P50 L_P99 L_CPU L_SYS L_UPCPU L_REQS L_OTHER L_BUSY L_BAD

measure() { # name proxy_pid
    local name=$1 pid=$2 out="$BENCH_DIR/wrk-$1.txt"
    verify_scenario "$name"
    log "$name: warm-up $WARMUP"
    run_wrk_jwt "$name" "$WARMUP" "$BENCH_DIR/warmup-$name.txt"
    local p0 u0 p1 u1 m0 m1 w0 w1 t0 t1 k0 k1
    p0=$(cpu_ticks $(pid_tree "$pid"))
    k0=$(sys_ticks $(pid_tree "$pid"))
    u0=$(cpu_ticks $(pid_tree "$UPSTREAM_PID"))
    children_ticks; w0=$CHILD_TICKS
    m0=$(machine_ticks)
    t0=$(date +%s%N)
    log "$name: wrk -t$THREADS -c$CONNECTIONS -d$DURATION $(path_of "$name")"
    run_wrk_jwt "$name" "$DURATION" "$out"
    t1=$(date +%s%N)
    m1=$(machine_ticks)
    children_ticks; w1=$CHILD_TICKS
    p1=$(cpu_ticks $(pid_tree "$pid"))
    k1=$(sys_ticks $(pid_tree "$pid"))
    u1=$(cpu_ticks $(pid_tree "$UPSTREAM_PID"))
    OTHER[$name]=$(awk -v m0="$m0" -v m1="$m1" -v ours=$((p1 - p0 + u1 - u0 + w1 - w0)) 'BEGIN {
        split(m0, a, " "); split(m1, b, " ")
        o = (b[1] - a[1] - ours) / (b[2] - a[2]) * 100
        printf "%.0f", (o < 0 ? 0 : o) }')
    [ "${OTHER[$name]}" -lt 10 ] || log "WARNING $name: ${OTHER[$name]}% of the machine's CPU went to other processes"
    # The proxy's CPU over the wall time of the run (wrk's Lua start-up included): ~100 % when
    # the proxy is the bottleneck, as it should be.
    BUSY[$name]=$(awk -v d=$((p1 - p0)) -v t="$CLK_TCK" -v ns=$((t1 - t0)) 'BEGIN {printf "%.0f", d / t / (ns / 1e9) * 100}')

    local reqs bad errs
    reqs=$(awk '/requests in/ {print $1; exit}' "$out")
    [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || die "$name: wrk served no request: $(cat "$out")"
    bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    errs=$(awk '/Socket errors:/ {print}' "$out")
    [ -z "$bad" ] || log "WARNING $name: $bad non-2xx responses: this row measured errors"
    [ -z "$errs" ] || log "WARNING $name: $errs"
    BAD[$name]=${bad:-0}
    REQS[$name]=$reqs
    RPS[$name]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    P50[$name]=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    P99[$name]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    UPCPU[$name]=$(awk -v d=$((u1 - u0)) -v r="$reqs" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", d / t * 1e6 / r}')
    CPU[$name]=$(awk -v d=$((p1 - p0)) -v r="$reqs" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", d / t * 1e6 / r}')
    SYS[$name]=$(awk -v d=$((k1 - k0)) -v r="$reqs" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", d / t * 1e6 / r}')
    log "$name: ${RPS[$name]} req/s, p50 ${P50[$name]} ms, p99 ${P99[$name]} ms, proxy CPU ${CPU[$name]} us/req (busy ${BUSY[$name]}%)"
    local v
    for v in RPS P50 P99 CPU SYS UPCPU REQS OTHER BUSY BAD; do
        declare -n cur=$v all=L_$v
        all[$name]+="${cur[$name]} "
        unset -n cur all
    done
}

median() { # format values...
    local fmt=$1
    shift
    printf '%s\n' "$@" | sort -g | awk -v f="$fmt" '{v[NR] = $1}
        END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf f, m}'
}

# --- run ------------------------------------------------------------------------------------
log "keys and tokens (HS $TOKENS_HS, RS $TOKENS_RS, ES $TOKENS_ES distinct tokens for the uncached rows)"
python3 "$HERE/jwt_tokens.py" "$KEYS" "$TOKENS_HS" "$TOKENS_RS" "$TOKENS_ES" || die "token generation failed"

start_upstream "$BENCH_DIR"
UPSTREAM_PID=$SPAWNED
case " $ONLY " in
    *" gh-intro "*)
        INTRO_PORT=$((GATEHOUSE_PORT + 50))
        port_free "$INTRO_PORT" || die "port $INTRO_PORT busy (set BASE_PORT)"
        spawn stub "$BENCH_DIR/introspection-stub.log" python3 "$HERE/introspection_stub.py" "$INTRO_PORT" "$KEYS"
        wait_port "$INTRO_PORT" || die "the introspection stub did not start: $(cat "$BENCH_DIR/introspection-stub.log")"
        ;;
esac

for round in $(seq 1 "$ROUNDS"); do
    [ "$ROUNDS" = 1 ] || log "round $round of $ROUNDS"
    for which in $ONLY; do
        kind=$(proxy_of "$which")
        if [ -z "${RUNNING[$kind]:-}" ]; then
            case "$kind" in
                gatehouse) start_gatehouse_jwt "$BENCH_DIR" ;;
                haproxy) start_haproxy_jwt "$BENCH_DIR" ;;
                nginx) start_nginx_proxy "$BENCH_DIR" ;;
            esac
            RUNNING[$kind]=$SPAWNED
        fi
        pid=${RUNNING[$kind]}
        measure "$which" "$pid"
        if [ "$RESTART" = 1 ]; then
            stop_pid "$pid"
            unset "RUNNING[$kind]"
            rm -f "$BENCH_DIR/gatehouse/access.log"
        else
            : >"$BENCH_DIR/gatehouse/access.log" 2>/dev/null || true  # O_APPEND: writing goes on at 0
        fi
    done
done

for which in $ONLY; do
    for v in RPS:%.0f P50:%.3f P99:%.3f CPU:%.2f SYS:%.2f UPCPU:%.2f REQS:%.0f OTHER:%.0f BUSY:%.0f BAD:%.0f; do
        declare -n cur=${v%%:*} all=L_${v%%:*}
        # shellcheck disable=SC2086
        cur[$which]=$(median "${v#*:}" ${all[$which]})
        unset -n cur all
    done
done

# Per-round figure of a against b (ratio or difference), then the median over the rounds.
per_round() { # op a b -> "median|r1 r2 ..."
    local op=$1 a b i vals=""
    # shellcheck disable=SC2206
    a=(${L_CPU[$2]}) b=(${L_CPU[$3]})
    for i in "${!a[@]}"; do
        vals+="$(awk -v x="${a[$i]}" -v y="${b[$i]}" -v op="$op" 'BEGIN {
            if (op == "ratio") printf "%.2f", x / y; else printf "%.2f", x - y }') "
    done
    # shellcheck disable=SC2086
    echo "$(median %.2f $vals)|${vals% }"
}
have() { [ -n "${CPU[$1]:-}" ]; }
signed() { awk -v v="$1" 'BEGIN {printf "%+.2f", v}'; }

echo
echo "gatehouse JWT bench: wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP), 100-byte body, $ROUNDS round(s)$([ "$ROUNDS" = 1 ] || echo ", medians")$([ "$RESTART" = 1 ] || echo ", proxies kept running across rounds"), pinning: $PIN" \
    "($( [ "$PIN" = split ] && echo "proxy on CPU 0, wrk + upstream on CPU 1" || echo "none"); $(nproc) CPUs)"
echo "gatehouse: $GATEHOUSE_BIN; HAProxy $(haproxy -v 2>/dev/null | awk 'NR == 1 {print $3}'); nginx $(nginx -v 2>&1 | sed 's/.*nginx\///')"
echo "warm: the same token every request; -nc: a different token every request (HS $TOKENS_HS, RS $TOKENS_RS, ES $TOKENS_ES in rotation)"
echo "proxy CPU = utime+stime of the proxy (/proc/PID/stat) / requests, of which kernel = stime; busy% = proxy CPU / wall time; other% = machine CPU outside the benchmark"
echo
fmt="%-12s %9s %8s %8s %11s %9s %12s %6s %7s %7s   %10s %10s\n"
printf "$fmt" scenario "req/s" "p50 ms" "p99 ms" "CPU us/req" "kernel us" "upstr us/req" "busy%" "other%" "non-2xx" "CPU/public" "+us/public"
[ -z "$RESULTS" ] || printf "scenario\trps\tp50_ms\tp99_ms\tcpu_us_per_req\tupstream_cpu_us_per_req\tproxy_busy_pct\tother_cpu_pct\tnon_2xx\trequests\n" >"$RESULTS"
for which in $ONLY; do
    have "$which" || continue
    ratio="-" diff="-"
    if have gh-public; then
        ratio="$(per_round ratio "$which" gh-public | cut -d'|' -f1)x"
        diff=$(signed "$(per_round diff "$which" gh-public | cut -d'|' -f1)")
    fi
    printf "$fmt" "$which" "${RPS[$which]}" "${P50[$which]}" "${P99[$which]}" "${CPU[$which]}" "${SYS[$which]}" "${UPCPU[$which]}" \
        "${BUSY[$which]}" "${OTHER[$which]}" "${BAD[$which]}" "$ratio" "$diff"
    [ -z "$RESULTS" ] || printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$which" "${RPS[$which]}" "${P50[$which]}" \
        "${P99[$which]}" "${CPU[$which]}" "${UPCPU[$which]}" "${BUSY[$which]}" "${OTHER[$which]}" "${BAD[$which]}" "${REQS[$which]}" >>"$RESULTS"
done
echo "(CPU/public and +us/public: per round against gh-public of the same round, median over the rounds)"

echo
if have gh-intro && have gh-rs256; then
    IFS='|' read -r m per <<<"$(per_round ratio gh-intro gh-rs256)"
    echo "goal (issue 13): introspected opaque token, warm cache: CPU/request gh-intro / gh-rs256 = $m (goal <= 1.10; per round: $per)"
fi
if have gh-public && have gh-rs256; then
    IFS='|' read -r m per <<<"$(per_round ratio gh-rs256 gh-public)"
    echo "GOAL gatehouse RS256 + role, warm cache / public route CPU = ${m}x (goal <= 1.10: $(awk -v m="$m" 'BEGIN {print (m <= 1.10) ? "met" : "NOT met"}'); per round: $per)"
fi
if have gh-public && have nginx; then
    IFS='|' read -r m per <<<"$(per_round ratio gh-public nginx)"
    echo "GOAL gatehouse public route / nginx CPU = ${m}x (goal <= 1.30: $(awk -v m="$m" 'BEGIN {print (m <= 1.30) ? "met" : "NOT met"}'); per round: $per)"
fi
if have gh-rs256 && have nginx; then
    IFS='|' read -r m per <<<"$(per_round ratio gh-rs256 nginx)"
    echo "GOAL gatehouse RS256 + role, warm cache / nginx CPU = ${m}x (goal <= 1.45: $(awk -v m="$m" 'BEGIN {print (m <= 1.45) ? "met" : "NOT met"}'); per round: $per)"
fi
if have gh-public-tok && have nginx-tok; then
    IFS='|' read -r m per <<<"$(per_round ratio gh-public-tok gh-public)"
    echo "control: the token's bytes on the public route, gh-public-tok / gh-public CPU = ${m}x (per round: $per)"
    IFS='|' read -r m per <<<"$(per_round ratio nginx-tok nginx)"
    echo "control: the same bytes through nginx, nginx-tok / nginx CPU = ${m}x (per round: $per)"
    IFS='|' read -r m per <<<"$(per_round ratio gh-rs256 gh-public-tok)"
    echo "control: the auth work alone, gh-rs256 / gh-public-tok CPU = ${m}x (per round: $per)"
fi
if have gh-public && have gh-hs256-nc; then
    IFS='|' read -r m per <<<"$(per_round diff gh-hs256-nc gh-public)"
    echo "GOAL gatehouse HS256 + role, uncached - public route CPU = $(signed "$m") us (goal <= +4 us: $(awk -v m="$m" 'BEGIN {print (m <= 4) ? "met" : "NOT met"}'); per round: $per)"
fi
for pair in "gh-hs256-lua gh-hs256" "gh-rs256 hap-rs256" "gh-rs256-nc hap-rs256" "gh-es256 hap-es256" "gh-es256-nc hap-es256" "gh-hs256 hap-hs256" "gh-hs256-nc hap-hs256" "gh-public hap-public"; do
    set -- $pair
    have "$1" && have "$2" || continue
    IFS='|' read -r m per <<<"$(per_round ratio "$1" "$2")"
    printf "%-11s / %-10s CPU = %sx (per round: %s)\n" "$1" "$2" "$m" "$per"
done
for alg in rs256 es256 hs256; do
    have "gh-$alg" && have "gh-$alg-nc" || continue
    IFS='|' read -r m per <<<"$(per_round diff "gh-$alg-nc" "gh-$alg")"
    echo "gatehouse $alg verification (uncached - warm): $(signed "$m") us/request (per round: $per)"
done
