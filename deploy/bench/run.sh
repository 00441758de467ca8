#!/usr/bin/env bash
# gatehouse vs nginx vs HAProxy as reverse proxies in front of one fixed nginx upstream, on
# 127.0.0.1 only. Reports requests/s, latency p50/p99 and the proxy's CPU time per request,
# each as a ratio to nginx. See README.md in this folder.
#
#   deploy/bench/run.sh                          # -t1 -c32 -d10s, 2 s warm-up each
#   DURATION=30s CONNECTIONS=64 deploy/bench/run.sh
#   PIN=none deploy/bench/run.sh                 # no CPU pinning
#   ONLY="gatehouse nginx" deploy/bench/run.sh   # a subset (direct gatehouse nginx haproxy)
#   ROUNDS=3 deploy/bench/run.sh                 # three rounds; medians, per-round CPU ratios
#   BASELINE_BIN=/tmp/old/gatehouse ONLY="baseline gatehouse nginx" ROUNDS=3 deploy/bench/run.sh
#                                                # another gatehouse build as the row "baseline",
#                                                # measured in the same rounds (A/B of a change)
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ONLY="${ONLY:-direct gatehouse nginx haproxy}"
ROUNDS="${ROUNDS:-1}"    # repeat the whole sequence; the table shows medians
RESULTS="${RESULTS:-}"   # optional: also write the table as TSV to this file

ensure_tools wrk wrk nginx nginx-light haproxy haproxy curl curl taskset util-linux pgrep procps ss iproute2
ensure_gatehouse
[ "$(nproc)" -ge 2 ] || { [ "$PIN" = none ] || { log "one CPU: PIN=none"; PIN=none; }; }

choose_ports 28000
BENCH_DIR=$(mktemp -d /tmp/gh-bench.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM

# wrk latency text (e.g. 812.00us, 1.21ms, 1.02s) -> milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n }'
}

declare -A RPS P50 P99 CPU UPCPU REQS OTHER    # this round's figures
declare -A L_RPS L_P50 L_P99 L_CPU L_UPCPU L_REQS L_OTHER  # every round's, space-separated

# measure NAME PORT PROXY_PID (PROXY_PID empty for the direct run)
measure() {
    local name=$1 port=$2 pid=$3 out="$BENCH_DIR/wrk-$1.txt"
    check_body "$port" "$name"
    log "$name: warm-up $WARMUP"
    run_wrk "$port" "$WARMUP" "$BENCH_DIR/warmup-$name.txt"
    local p0 u0 p1 u1 m0 m1 w0 w1
    p0=$([ -n "$pid" ] && cpu_ticks $(pid_tree "$pid") || echo 0)
    u0=$(cpu_ticks $(pid_tree "$UPSTREAM_PID"))
    children_ticks; w0=$CHILD_TICKS
    m0=$(machine_ticks)
    log "$name: wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
    run_wrk "$port" "$DURATION" "$out"
    m1=$(machine_ticks)
    children_ticks; w1=$CHILD_TICKS
    p1=$([ -n "$pid" ] && cpu_ticks $(pid_tree "$pid") || echo 0)
    u1=$(cpu_ticks $(pid_tree "$UPSTREAM_PID"))
    # CPU that neither the proxy, the upstream nor wrk used, as a share of the machine: how
    # much else ran during the measurement (a build, another benchmark): noise.
    OTHER[$name]=$(awk -v m0="$m0" -v m1="$m1" -v ours=$((p1 - p0 + u1 - u0 + w1 - w0)) 'BEGIN {
        split(m0, a, " "); split(m1, b, " ")
        o = (b[1] - a[1] - ours) / (b[2] - a[2]) * 100
        printf "%.0f", (o < 0 ? 0 : o) }')
    [ "${OTHER[$name]}" -lt 10 ] || log "WARNING $name: ${OTHER[$name]}% of the machine's CPU went to other processes"

    local reqs bad errs
    reqs=$(awk '/requests in/ {print $1; exit}' "$out")
    [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || die "$name: wrk served no request: $(cat "$out")"
    bad=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    errs=$(awk '/Socket errors:/ {print}' "$out")
    [ -z "$bad" ] || log "WARNING $name: $bad non-2xx responses"
    [ -z "$errs" ] || log "WARNING $name: $errs"
    REQS[$name]=$reqs
    RPS[$name]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    P50[$name]=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    P99[$name]=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    UPCPU[$name]=$(awk -v d=$((u1 - u0)) -v r="$reqs" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", d / t * 1e6 / r}')
    if [ -n "$pid" ]; then
        CPU[$name]=$(awk -v d=$((p1 - p0)) -v r="$reqs" -v t="$CLK_TCK" 'BEGIN {printf "%.2f", d / t * 1e6 / r}')
    else
        CPU[$name]="-"
    fi
    log "$name: ${RPS[$name]} req/s, p50 ${P50[$name]} ms, p99 ${P99[$name]} ms, proxy CPU ${CPU[$name]} us/req"
    local v
    for v in RPS P50 P99 CPU UPCPU REQS OTHER; do
        declare -n cur=$v all=L_$v
        all[$name]+="${cur[$name]} "
        unset -n cur all
    done
}

median() { # format values... ("-" stays "-")
    local fmt=$1
    shift
    [ "$1" = - ] && { echo -; return; }
    printf '%s\n' "$@" | sort -g | awk -v f="$fmt" '{v[NR] = $1}
        END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf f, m}'
}

start_upstream "$BENCH_DIR"
UPSTREAM_PID=$SPAWNED

for round in $(seq 1 "$ROUNDS"); do
    [ "$ROUNDS" = 1 ] || log "round $round of $ROUNDS"
    for which in $ONLY; do
        case "$which" in
            direct) measure direct "$UPSTREAM_PORT" "" ;;
            gatehouse|baseline)
                bin=$GATEHOUSE_BIN
                if [ "$which" = baseline ]; then
                    [ -x "${BASELINE_BIN:-}" ] || die "baseline: set BASELINE_BIN to another gatehouse binary"
                    GATEHOUSE_BIN=$BASELINE_BIN
                fi
                start_gatehouse "$BENCH_DIR"; pid=$SPAWNED
                GATEHOUSE_BIN=$bin
                measure "$which" "$GATEHOUSE_PORT" "$pid"
                stop_pid "$pid"
                log "$which: $(wc -l <"$BENCH_DIR/gatehouse/access.log") access-log lines written"
                rm -f "$BENCH_DIR/gatehouse/access.log" ;;
            nginx)
                start_nginx_proxy "$BENCH_DIR"; pid=$SPAWNED
                measure nginx "$NGINX_PROXY_PORT" "$pid"
                stop_pid "$pid" ;;
            haproxy)
                start_haproxy "$BENCH_DIR"; pid=$SPAWNED
                measure haproxy "$HAPROXY_PORT" "$pid"
                stop_pid "$pid" ;;
            *) die "unknown ONLY entry: $which" ;;
        esac
    done
done

# With several rounds, every figure below is the median over the rounds.
for which in $ONLY; do
    for v in RPS:%.0f P50:%.3f P99:%.3f CPU:%.2f UPCPU:%.2f REQS:%.0f OTHER:%.0f; do
        declare -n cur=${v%%:*} all=L_${v%%:*}
        # shellcheck disable=SC2086
        cur[$which]=$(median "${v#*:}" ${all[$which]})
        unset -n cur all
    done
done

ratio() { # value reference
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == "" || b + 0 == 0) print "-"; else printf "%.2fx", a / b }'
}

echo
echo "gatehouse bench: wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP), 100-byte body, $ROUNDS round(s)$([ "$ROUNDS" = 1 ] || echo ", medians"), pinning: $PIN" \
    "($( [ "$PIN" = split ] && echo "proxy on CPU 0, wrk + upstream on CPU 1" || echo "none"); $(nproc) CPUs)"
echo "proxy CPU = utime+stime of the proxy's processes (/proc/PID/stat) / requests; upstream CPU likewise for the upstream nginx;"
echo "other% = share of the machine's CPU used by processes outside the benchmark during the run (noise; nice $NICE)"
echo
fmt="%-10s %9s %8s %8s %11s %13s %7s   %8s %8s %8s %8s\n"
printf "$fmt" proxy "req/s" "p50 ms" "p99 ms" "CPU us/req" "upstr us/req" "other%" "rps/ngx" "p50/ngx" "p99/ngx" "CPU/ngx"
[ -z "$RESULTS" ] || printf "proxy\trps\tp50_ms\tp99_ms\tcpu_us_per_req\tupstream_cpu_us_per_req\tother_cpu_pct\trequests\n" >"$RESULTS"
for which in $ONLY; do
    [ -n "${RPS[$which]:-}" ] || continue
    ref=nginx
    printf "$fmt" "$which" "${RPS[$which]}" "${P50[$which]}" "${P99[$which]}" "${CPU[$which]}" "${UPCPU[$which]}" "${OTHER[$which]}" \
        "$(ratio "${RPS[$which]}" "${RPS[$ref]:-}")" "$(ratio "${P50[$which]}" "${P50[$ref]:-}")" \
        "$(ratio "${P99[$which]}" "${P99[$ref]:-}")" "$(ratio "${CPU[$which]}" "${CPU[$ref]:-}")"
    [ -z "$RESULTS" ] || printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$which" "${RPS[$which]}" "${P50[$which]}" \
        "${P99[$which]}" "${CPU[$which]}" "${UPCPU[$which]}" "${OTHER[$which]}" "${REQS[$which]}" >>"$RESULTS"
done
if [ -n "${CPU[gatehouse]:-}" ] && [ -n "${CPU[nginx]:-}" ]; then
    r=$(awk -v a="${CPU[gatehouse]}" -v b="${CPU[nginx]}" 'BEGIN {printf "%.2f", a / b}')
    verdict=$(awk -v r="$r" 'BEGIN {print (r <= 1.3) ? "within" : "ABOVE"}')
    echo
    if [ "$ROUNDS" != 1 ]; then
        # shellcheck disable=SC2206
        g=(${L_CPU[gatehouse]}) n=(${L_CPU[nginx]})
        per=""
        for i in "${!g[@]}"; do per+=" $(awk -v a="${g[$i]}" -v b="${n[$i]}" 'BEGIN {printf "%.2f", a / b}')"; done
        echo "per round gatehouse/nginx CPU per request:$per"
    fi
    echo "KEY: gatehouse/nginx CPU per request = ${r}x ($verdict the 1.3x target of issue 16)"
fi
if [ -n "${CPU[gatehouse]:-}" ] && [ -n "${CPU[baseline]:-}" ]; then
    # shellcheck disable=SC2206
    g=(${L_CPU[gatehouse]}) b=(${L_CPU[baseline]})
    per=""
    for i in "${!g[@]}"; do per+=" $(awk -v a="${g[$i]}" -v b="${b[$i]}" 'BEGIN {printf "%.3f", a / b}')"; done
    echo "per round gatehouse/baseline CPU per request:$per (baseline: $BASELINE_BIN)"
fi
