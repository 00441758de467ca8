#!/usr/bin/env bash
# Forward auth (SPEC §11, docs/forward-auth.md): what a decision costs gatehouse, and what
# nginx + auth_request + gatehouse costs end to end. Same upstream, pinning, priority and CPU
# accounting as run.sh and jwt.sh (lib.sh). 127.0.0.1 only. See README.md ("Forward auth").
#
#   deploy/bench/fwd.sh                          # every scenario, -t1 -c32 -d10s, 2 s warm-up each
#   ROUNDS=2 deploy/bench/fwd.sh                 # two rounds; medians and per-round ratios
#   ONLY="gh-public gh-fwd-rs256" deploy/bench/fwd.sh
#
# Scenarios (ONLY):
#   gh-public      gatehouse proxying its public route (auth: none): the reference of the goal
#   gh-fwd-rs256   wrk straight at gatehouse's decision endpoint (style: original), describing
#                  GET /rs/bench with the same RS256 token every request (warm verified-token
#                  cache) on a route that requires the role admin; gatehouse answers 200, empty
#   nginx          nginx as proxy (run.sh's config), public, no auth
#   nginx-fwd      nginx with the shipped recipe deploy/examples/forward-auth/nginx.conf
#                  (auth_request to gatehouse, identity headers copied) in front of the same
#                  upstream, the same RS256 token; CPU = nginx + gatehouse
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

ALL="gh-public gh-fwd-rs256 nginx nginx-fwd"
ONLY="${ONLY:-$ALL}"
ROUNDS="${ROUNDS:-1}"
for which in $ONLY; do
    case " $ALL " in *" $which "*) ;; *) die "unknown ONLY entry: $which (one of: $ALL)" ;; esac
done

ensure_tools wrk wrk nginx nginx-light curl curl taskset util-linux pgrep procps ss iproute2 python3 python3
if ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
    log "installing: python3-jwt python3-cryptography"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-jwt python3-cryptography >/dev/null
fi
ensure_gatehouse
[ "$(nproc)" -ge 2 ] || { [ "$PIN" = none ] || { log "one CPU: PIN=none"; PIN=none; }; }

choose_ports 30000
NGINX_FWD_PORT=$((BASE_PORT + 83))
port_free "$NGINX_FWD_PORT" || die "port $NGINX_FWD_PORT busy (set BASE_PORT)"
BENCH_DIR=$(mktemp -d /tmp/gh-bench-fwd.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
KEYS="$BENCH_DIR/keys"

to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n }'
}

# --- configs --------------------------------------------------------------------------------
# jwt.sh's gatehouse (one worker, three issuers, /rs/** requires admin from the RS256 issuer,
# JSON access log) plus the decision endpoint.
start_gatehouse_fwd() { # dir -> SPAWNED
    write_gatehouse_jwt_conf "$1"
    printf 'forward_auth: { style: original }\n' >>"$1/gatehouse/gatehouse.yaml"
    "$GATEHOUSE_BIN" check --config "$1/gatehouse/gatehouse.yaml" >"$1/gatehouse/check.txt" 2>&1 \
        || die "gatehouse check failed: $(cat "$1/gatehouse/check.txt")"
    port_free "$GATEHOUSE_PORT" || die "port $GATEHOUSE_PORT busy (set BASE_PORT)"
    spawn proxy "$1/gatehouse/stderr.log" "$GATEHOUSE_BIN" run --config "$1/gatehouse/gatehouse.yaml"
    wait_port "$GATEHOUSE_PORT" || die "gatehouse did not start: $(cat "$1/gatehouse/stderr.log")"
}

# The recipe as it ships, its ports replaced, inside a main file like run.sh's nginx (one
# worker, a buffered access log).
start_nginx_fwd() { # dir -> SPAWNED
    local d=$1/nginx-fwd
    mkdir -p "$d/logs" "$d/tmp" "$d/www"
    # The page of `error_page 401`, readable by nginx's workers (they run as nobody).
    echo '<html><body>login</body></html>' >"$d/www/login.html"
    chmod 755 "$1" "$d" "$d/www"
    chmod 644 "$d/www/login.html"
    sed -e "s/127\.0\.0\.1:8000/127.0.0.1:$NGINX_FWD_PORT/" -e "s/127\.0\.0\.1:8080/127.0.0.1:$GATEHOUSE_PORT/" \
        -e "s/127\.0\.0\.1:9000/127.0.0.1:$UPSTREAM_PORT/" -e "s|/srv/gatehouse-login|$d/www|" \
        "$REPO/deploy/examples/forward-auth/nginx.conf" >"$d/recipe.conf"
    cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log $d/logs/access.log combined buffer=64k flush=1s;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    include $d/recipe.conf;
}
EOF
    spawn proxy "$d/stderr.log" nginx -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log"
    wait_port "$NGINX_FWD_PORT" || die "nginx (forward auth) did not start: $(cat "$d/stderr.log" "$d/logs/error.log" 2>/dev/null)"
}

# --- what each scenario sends ----------------------------------------------------------------
port_of() {
    case "$1" in gh-*) echo "$GATEHOUSE_PORT" ;; nginx) echo "$NGINX_PROXY_PORT" ;; nginx-fwd) echo "$NGINX_FWD_PORT" ;; esac
}
path_of() { case "$1" in gh-fwd-rs256) echo /_gatehouse/auth ;; nginx-fwd) echo /rs/bench ;; *) echo /bench ;; esac; }
# Header arguments (curl and wrk take the same -H form), for a token file of KEYS ("" for none).
headers_of() { # name tokenfile
    local args=()
    case "$1" in
        gh-fwd-rs256) args+=(-H "X-Original-Method: GET" -H "X-Original-URI: /rs/bench" -H "X-Forwarded-Host: bench") ;;
    esac
    if [ -n "${2:-}" ]; then args+=(-H "Authorization: Bearer $(head -n1 "$KEYS/$2")"); fi
    [ ${#args[@]} -eq 0 ] || printf '%s\n' "${args[@]}"
}
authenticated() { case "$1" in gh-fwd-rs256 | nginx-fwd) return 0 ;; *) return 1 ;; esac; }

# --- correctness before timing --------------------------------------------------------------
expect() { # name what want-status want-body(body|empty|any) tokenfile
    local got args=()
    mapfile -t args < <(headers_of "$1" "${5:-}")
    got=$(curl -s -o "$BENCH_DIR/check-body.txt" -w '%{http_code}' --max-time 2 "${args[@]}" \
        "http://127.0.0.1:$(port_of "$1")$(path_of "$1")" || echo 000)
    [ "$got" = "$3" ] || die "$1: $2 answered $got, expected $3 ($(head -c 200 "$BENCH_DIR/check-body.txt"))"
    case "$4" in
        body) [ "$(cat "$BENCH_DIR/check-body.txt")" = "$BODY" ] || die "$1: $2: unexpected body" ;;
        empty) [ ! -s "$BENCH_DIR/check-body.txt" ] || die "$1: $2: a decision answers an empty body" ;;
    esac
    CHECKS+=" $2 $got,"
}
verify_scenario() { # name
    CHECKS=""
    case "$1" in
        gh-fwd-rs256)
            expect "$1" valid 200 empty rs.token
            expect "$1" none 401 any
            expect "$1" role-user 403 any rs.user
            expect "$1" badsig 401 any rs.badsig ;;
        nginx-fwd)
            expect "$1" valid 200 body rs.token
            expect "$1" none 401 any
            expect "$1" role-user 403 any rs.user ;;
        *) expect "$1" public 200 body ;;
    esac
    log "$1: checked:${CHECKS%,}"
}

run_wrk_fwd() { # name duration outfile
    local args=() token=""
    authenticated "$1" && token=rs.token
    mapfile -t args < <(headers_of "$1" "$token")
    # shellcheck disable=SC2046
    $(pin load) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2" --latency "${args[@]}" \
        "http://127.0.0.1:$(port_of "$1")$(path_of "$1")" >"$3" 2>&1 &
    local pid=$!
    prioritize "$pid"
    wait "$pid" || die "wrk failed: $(cat "$3")"
}

declare -A RPS P50 P99 CPU UPCPU OTHER BUSY BAD
declare -A L_RPS L_P50 L_P99 L_CPU L_UPCPU L_OTHER L_BUSY L_BAD

measure() { # name pids...
    local name=$1 out="$BENCH_DIR/wrk-$1.txt"
    shift
    local pids=("$@") pid all=()
    verify_scenario "$name"
    log "$name: warm-up $WARMUP"
    run_wrk_fwd "$name" "$WARMUP" "$BENCH_DIR/warmup-$name.txt"
    local p0 u0 p1 u1 m0 m1 w0 w1 t0 t1
    for pid in "${pids[@]}"; do all+=($(pid_tree "$pid")); done
    p0=$(cpu_ticks "${all[@]}"); u0=$(cpu_ticks $(pid_tree "$UPSTREAM_PID"))
    children_ticks; w0=$CHILD_TICKS
    m0=$(machine_ticks); t0=$(date +%s%N)
    log "$name: wrk -t$THREADS -c$CONNECTIONS -d$DURATION $(path_of "$name")"
    run_wrk_fwd "$name" "$DURATION" "$out"
    t1=$(date +%s%N); m1=$(machine_ticks)
    children_ticks; w1=$CHILD_TICKS
    p1=$(cpu_ticks "${all[@]}"); u1=$(cpu_ticks $(pid_tree "$UPSTREAM_PID"))
    OTHER[$name]=$(awk -v m0="$m0" -v m1="$m1" -v ours=$((p1 - p0 + u1 - u0 + w1 - w0)) 'BEGIN {
        split(m0, a, " "); split(m1, b, " ")
        o = (b[1] - a[1] - ours) / (b[2] - a[2]) * 100
        printf "%.0f", (o < 0 ? 0 : o) }')
    [ "${OTHER[$name]}" -lt 10 ] || log "WARNING $name: ${OTHER[$name]}% of the machine's CPU went to other processes"
    BUSY[$name]=$(awk -v d=$((p1 - p0)) -v t="$CLK_TCK" -v ns=$((t1 - t0)) 'BEGIN {printf "%.0f", d / t / (ns / 1e9) * 100}')
    local reqs bad
    reqs=$(awk '/requests in/ {print $1; exit}' "$out")
    [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || die "$name: wrk served no request: $(cat "$out")"
    bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    [ -z "$bad" ] || log "WARNING $name: $bad non-2xx responses: this row measured errors"
    BAD[$name]=${bad:-0}
    RPS[$name]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    P50[$name]=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    P99[$name]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    UPCPU[$name]=$(awk -v d=$((u1 - u0)) -v r="$reqs" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", d / t * 1e6 / r}')
    CPU[$name]=$(awk -v d=$((p1 - p0)) -v r="$reqs" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", d / t * 1e6 / r}')
    log "$name: ${RPS[$name]} req/s, p50 ${P50[$name]} ms, p99 ${P99[$name]} ms, CPU ${CPU[$name]} us/req (busy ${BUSY[$name]}%)"
    local v
    for v in RPS P50 P99 CPU UPCPU OTHER BUSY BAD; do
        declare -n cur=$v every=L_$v
        every[$name]+="${cur[$name]} "
        unset -n cur every
    done
}

median() { # format values...
    local fmt=$1
    shift
    printf '%s\n' "$@" | sort -g | awk -v f="$fmt" '{v[NR] = $1}
        END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf f, m}'
}
per_round() { # a b -> "median|r1 r2 ..." of CPU[a] / CPU[b], round by round
    local a b i vals=""
    # shellcheck disable=SC2206
    a=(${L_CPU[$1]}) b=(${L_CPU[$2]})
    for i in "${!a[@]}"; do vals+="$(awk -v x="${a[$i]}" -v y="${b[$i]}" 'BEGIN {printf "%.2f", x / y}') "; done
    # shellcheck disable=SC2086
    echo "$(median %.2f $vals)|${vals% }"
}
have() { [ -n "${CPU[$1]:-}" ]; }

# --- run ------------------------------------------------------------------------------------
log "keys and tokens"
python3 "$HERE/jwt_tokens.py" "$KEYS" 1 1 1 >/dev/null || die "token generation failed"
start_upstream "$BENCH_DIR"
UPSTREAM_PID=$SPAWNED

for round in $(seq 1 "$ROUNDS"); do
    [ "$ROUNDS" = 1 ] || log "round $round of $ROUNDS"
    for which in $ONLY; do
        case "$which" in
            gh-*)
                start_gatehouse_fwd "$BENCH_DIR"; gh=$SPAWNED
                measure "$which" "$gh"
                stop_pid "$gh" ;;
            nginx)
                start_nginx_proxy "$BENCH_DIR"; nx=$SPAWNED
                measure "$which" "$nx"
                stop_pid "$nx" ;;
            nginx-fwd)
                start_gatehouse_fwd "$BENCH_DIR"; gh=$SPAWNED
                start_nginx_fwd "$BENCH_DIR"; nx=$SPAWNED
                measure "$which" "$nx" "$gh"
                stop_pid "$nx"; stop_pid "$gh" ;;
        esac
        rm -f "$BENCH_DIR/gatehouse/access.log"
    done
done

for which in $ONLY; do
    for v in RPS:%.0f P50:%.3f P99:%.3f CPU:%.2f UPCPU:%.2f OTHER:%.0f BUSY:%.0f BAD:%.0f; do
        declare -n cur=${v%%:*} every=L_${v%%:*}
        # shellcheck disable=SC2086
        cur[$which]=$(median "${v#*:}" ${every[$which]})
        unset -n cur every
    done
done

echo
echo "gatehouse forward-auth bench: wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP), $ROUNDS round(s)$([ "$ROUNDS" = 1 ] || echo ", medians"), pinning: $PIN ($(nproc) CPUs)"
echo "gatehouse: $GATEHOUSE_BIN; nginx $(nginx -v 2>&1 | sed 's/.*nginx\///')"
echo "CPU us/req = utime+stime of the proxy's processes (nginx-fwd: nginx + gatehouse) / requests; other% = machine CPU outside the benchmark"
echo
fmt="%-13s %9s %8s %8s %11s %12s %6s %7s %7s\n"
printf "$fmt" scenario "req/s" "p50 ms" "p99 ms" "CPU us/req" "upstr us/req" "busy%" "other%" "non-2xx"
for which in $ONLY; do
    have "$which" || continue
    printf "$fmt" "$which" "${RPS[$which]}" "${P50[$which]}" "${P99[$which]}" "${CPU[$which]}" "${UPCPU[$which]}" \
        "${BUSY[$which]}" "${OTHER[$which]}" "${BAD[$which]}"
done
echo
if have gh-public && have gh-fwd-rs256; then
    IFS='|' read -r m per <<<"$(per_round gh-fwd-rs256 gh-public)"
    echo "GOAL forward-auth decision (RS256 warm + role) / proxied public route CPU = ${m}x (goal <= 0.80: $(awk -v m="$m" 'BEGIN {print (m <= 0.80) ? "met" : "NOT met"}'); per round: $per)"
fi
if have nginx && have nginx-fwd; then
    IFS='|' read -r m per <<<"$(per_round nginx-fwd nginx)"
    echo "nginx + auth_request + gatehouse / plain nginx CPU = ${m}x (per round: $per)"
fi
