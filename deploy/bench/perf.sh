#!/usr/bin/env bash
# Where a proxy's CPU goes under the run.sh load: perf record of the proxy process, then the
# top symbols (self time), the top shared objects, the system calls by inclusive time, and
# (with strace) the system calls per request. 127.0.0.1 only; bounded.
#
#   deploy/bench/perf.sh                     # gatehouse, 10 s under wrk -t1 -c32
#   TARGET=nginx deploy/bench/perf.sh        # the same for the nginx proxy (or haproxy)
#   CALLGRAPH=fp TOP=40 deploy/bench/perf.sh # frame-pointer call graphs; more rows
#   KEEP=1 deploy/bench/perf.sh              # keep the temp dir (perf.data) for perf report
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TARGET="${TARGET:-gatehouse}"
TOP="${TOP:-30}"
CALLGRAPH="${CALLGRAPH:-dwarf}"   # dwarf (robust without frame pointers) | fp
FREQ="${FREQ:-999}"               # samples per second
STRACE="${STRACE:-1}"             # 1: also count system calls per request with strace -c (2 s)

ensure_tools wrk wrk nginx nginx-light haproxy haproxy curl curl taskset util-linux pgrep procps \
    ss iproute2 perf linux-perf strace strace
[ "$TARGET" != gatehouse ] || ensure_gatehouse

choose_ports 26000
BENCH_DIR=$(mktemp -d /tmp/gh-perf.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM

# Which event: hardware cycles when this machine exposes the PMU (not in most VMs), else
# the cpu-clock software timer (same profile shape, sampled by time instead of cycles).
EVENT=""
if perf stat -x, -e instructions true 2>&1 >/dev/null | grep -qv 'not supported' \
    && perf stat -x, -e instructions true 2>&1 | grep -q '^[0-9]'; then
    EVENT=cycles
elif perf record -q -e cpu-clock -o "$BENCH_DIR/probe.data" true >/dev/null 2>&1; then
    EVENT=cpu-clock
    log "no hardware counters here (perf stat -e instructions: not supported): sampling cpu-clock"
else
    EVENT=""
    log "perf record does not work here (perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid)): perf stat only"
fi

start_upstream "$BENCH_DIR"
UPSTREAM_PID=$SPAWNED
case "$TARGET" in
    gatehouse) start_gatehouse "$BENCH_DIR"; PORT=$GATEHOUSE_PORT ;;
    nginx) start_nginx_proxy "$BENCH_DIR"; PORT=$NGINX_PROXY_PORT ;;
    haproxy) start_haproxy "$BENCH_DIR"; PORT=$HAPROXY_PORT ;;
    *) die "TARGET must be gatehouse, nginx or haproxy" ;;
esac
PID=$SPAWNED
check_body "$PORT" "$TARGET"
log "$TARGET: warm-up $WARMUP"
run_wrk "$PORT" "$WARMUP" "$BENCH_DIR/warmup.txt"

secs=${DURATION%s}
# The process to profile: nginx's worker (the master only forks), else the process itself.
PROF_PID=$PID
if [ "$TARGET" = nginx ]; then PROF_PID=$(pgrep -P "$PID" | head -1); fi

# wrk runs for the whole profile plus a margin on both sides.
# shellcheck disable=SC2046
$(pin load) wrk -t"$THREADS" -c"$CONNECTIONS" -d$((secs + 8))s --latency "http://127.0.0.1:$PORT/bench" \
    >"$BENCH_DIR/wrk.txt" 2>&1 &
WRK_PID=$!
BENCH_PIDS+=("$WRK_PID")
sleep 1

t0=$(cpu_ticks $(pid_tree "$PID"))
if [ -n "$EVENT" ]; then
    cg=(-g)
    [ "$CALLGRAPH" = dwarf ] && cg=(--call-graph dwarf,16384)
    log "perf record -e $EVENT -F $FREQ ${cg[*]} -p $PROF_PID for ${secs}s"
    perf record -q -e "$EVENT" -F "$FREQ" "${cg[@]}" -p "$PROF_PID" -o "$BENCH_DIR/perf.data" -- sleep "$secs" \
        >"$BENCH_DIR/perf-record.txt" 2>&1 || die "perf record failed: $(cat "$BENCH_DIR/perf-record.txt")"
else
    perf stat -e task-clock,context-switches,cpu-migrations,page-faults -p "$PROF_PID" -- sleep "$secs" \
        >"$BENCH_DIR/perf-stat.txt" 2>&1 || true
fi
t1=$(cpu_ticks $(pid_tree "$PID"))

# System calls per request: strace -c on the proxy (its nginx worker) for 2 s; the requests
# of that window are counted by the upstream (stub_status), the same way for every proxy.
STRACE_REQS=0
if [ "$STRACE" = 1 ] && command -v strace >/dev/null; then
    log "strace -c -f for 2 s (slows the proxy: counts only, not times)"
    strace -c -f -p "$PROF_PID" -o "$BENCH_DIR/strace.txt" >/dev/null 2>&1 &
    STRACE_PID=$!
    BENCH_PIDS+=("$STRACE_PID")
    # Count from the moment every thread is traced to just before strace detaches, so that
    # the untraced (fast) moments around it do not inflate the request count.
    for ((i = 0; i < 100; i++)); do
        grep -h TracerPid "/proc/$PROF_PID"/task/*/status 2>/dev/null | grep -q 'TracerPid:[[:space:]]*0$' || break
        sleep 0.02
    done
    r0=$(upstream_requests)
    sleep 2
    r1=$(upstream_requests)
    kill -INT "$STRACE_PID" 2>/dev/null || true
    wait "$STRACE_PID" 2>/dev/null || true
    STRACE_REQS=$((r1 - r0))
fi
wait "$WRK_PID" 2>/dev/null || true

reqs=$(awk '/requests in/ {print $1; exit}' "$BENCH_DIR/wrk.txt")
rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$BENCH_DIR/wrk.txt")
echo
echo "== $TARGET under wrk -t$THREADS -c$CONNECTIONS (pinning: $PIN): $rps req/s over the whole wrk run"
echo "   CPU of $TARGET during the ${secs}s profile: $(awk -v d=$((t1 - t0)) -v t="$CLK_TCK" -v s="$secs" 'BEGIN {printf "%.0f%% of one core", d / t / s * 100}')"
if [ -z "$EVENT" ]; then
    cat "$BENCH_DIR/perf-stat.txt"
    exit 0
fi
# perf report into files first (a pipe into head would end it with SIGPIPE under pipefail).
report() { # outfile args...
    local out=$1
    shift
    perf report -i "$BENCH_DIR/perf.data" --stdio --no-header "$@" 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | sed -E 's/( +-)* *$//' >"$out" || true
}
report "$BENCH_DIR/symbols.txt" --no-children --sort dso,symbol -g none --percent-limit 0.3
report "$BENCH_DIR/dsos.txt" --no-children --sort dso -g none --percent-limit 0.5
report "$BENCH_DIR/inclusive.txt" --children --sort symbol -g none
report "$BENCH_DIR/threads.txt" --no-children --sort pid -g none --percent-limit 0.5
echo
echo "== top $TOP symbols (self time, all threads of pid $PROF_PID; event $EVENT)"
head -"$TOP" "$BENCH_DIR/symbols.txt"
echo
echo "== by shared object"
head -15 "$BENCH_DIR/dsos.txt"
echo
echo "== system calls, inclusive time (children, self; on loopback a send includes the peer's receive path)"
grep -E '\[k\] (__x64_sys_[a-z_0-9]+|do_writev|do_readv|do_epoll_ctl|do_epoll_wait|__sys_sendto|__sys_recvfrom|__sys_sendmsg|__sys_recvmsg|ksys_read|ksys_write|__do_sys_[a-z_0-9]+)$' \
    "$BENCH_DIR/inclusive.txt" | head -15 || true
echo
echo "== by thread"
head -8 "$BENCH_DIR/threads.txt"
if [ -s "$BENCH_DIR/strace.txt" ]; then
    echo
    echo "== system calls per request (strace -c -f, 2 s; $STRACE_REQS requests counted by the upstream's stub_status)"
    awk -v r="$STRACE_REQS" '$1 ~ /^[0-9.]+$/ && NF >= 5 {
            name = $NF; calls = $4
            printf "   %-16s %8d calls  %6.2f per request\n", name, calls, (r > 0 ? calls / r : 0) }' \
        "$BENCH_DIR/strace.txt" | head -15
fi
echo
echo "perf data: $BENCH_DIR/perf.data $([ "${KEEP:-0}" = 1 ] && echo "(kept)" || echo "(removed on exit; KEEP=1 keeps it)")"
