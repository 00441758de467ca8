# Shared by the scripts of this folder (sourced, not run). Everything listens on 127.0.0.1 only.
# Callers set: BENCH_DIR (a fresh temp dir), and may override the env knobs below.

REPO="${REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
DURATION="${DURATION:-10s}"         # wrk -d for each measurement
WARMUP="${WARMUP:-2s}"              # wrk -d of the warm-up before each measurement
CONNECTIONS="${CONNECTIONS:-32}"    # wrk -c
THREADS="${THREADS:-1}"             # wrk -t
BASE_PORT="${BASE_PORT:-}"          # upstream port; the others follow it (see choose_ports).
PIN="${PIN:-split}"                 # split: proxy on CPU 0, wrk + upstream on CPU 1; none: no pinning
# Measured processes run at this nice level (root only) so that whatever else runs on the
# machine (a build, say) takes less of their CPU; 0 leaves them as they are. With the
# kernel's autogroup scheduling on, nice only ranks processes within one session, so each
# measured process starts in its own session (setsid) whose autogroup gets this nice level.
if [ "$(id -u)" = 0 ]; then NICE="${NICE:--20}"; else NICE="${NICE:-0}"; fi
GATEHOUSE_BIN="${GATEHOUSE_BIN:-$REPO/.build-bench/release/gatehouse}"

port_free() { ! ss -Htln "sport = :$1" | grep -q .; }
ports_free() { # base
    local p
    for p in $1 $(($1 + 1)) $(($1 + 80)) $(($1 + 81)) $(($1 + 82)); do port_free "$p" || return 1; done
}
# choose_ports FIRST: unless BASE_PORT is set, the first of FIRST, FIRST+100, ... FIRST+900 whose
# ports are all free. Each script has its own FIRST, so that they can run side by side. All of
# them lie below the kernel's ephemeral range (32768-60999 here): a client socket (wrk, curl, a
# proxy's upstream connection) or its TIME_WAIT can hold a port of that range, and binding a
# proxy's port then failed ("Address already in use") in the middle of runs. Chosen once, at start.
choose_ports() {
    if [ -z "$BASE_PORT" ]; then
        local first
        for first in $(seq "$1" 100 $(($1 + 900))); do ports_free "$first" && { BASE_PORT=$first; break; }; done
        [ -n "$BASE_PORT" ] || die "no free ports in $1-$(($1 + 982)) (set BASE_PORT)"
    fi
    UPSTREAM_PORT=$BASE_PORT
    STATUS_PORT=$((BASE_PORT + 1))   # the upstream's stub_status: requests it served
    GATEHOUSE_PORT=$((BASE_PORT + 80))
    NGINX_PROXY_PORT=$((BASE_PORT + 81))
    HAPROXY_PORT=$((BASE_PORT + 82))
}
CLK_TCK=$(getconf CLK_TCK)
BENCH_PIDS=()

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages whose command is missing (apt-get update first, once).
ensure_tools() { # pairs: command package
    local missing=()
    while [ $# -gt 1 ]; do
        command -v "$1" >/dev/null 2>&1 || missing+=("$2")
        shift 2
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Builds the release binary into its own scratch path when it is not there (GATEHOUSE_BIN
# overrides the binary; REBUILD=1 forces a build).
ensure_gatehouse() {
    if [ -x "$GATEHOUSE_BIN" ] && [ "${REBUILD:-0}" != 1 ]; then return 0; fi
    log "building gatehouse (release, scratch path .build-bench)"
    (cd "$REPO" && swift build -c release --scratch-path .build-bench --product gatehouse) >&2 \
        || die "swift build failed"
    GATEHOUSE_BIN="$REPO/.build-bench/release/gatehouse"
}

# Command prefix for a role: nice level, and with PIN=split, proxy -> CPU 0, load (wrk,
# upstream) -> CPU 1.
pin() {
    local prefix=""
    [ "$NICE" = 0 ] || prefix="setsid nice -n $NICE "
    if [ "$PIN" = split ]; then
        case "$1" in
            proxy) prefix+="taskset -c 0" ;;
            load) prefix+="taskset -c 1" ;;
        esac
    fi
    echo "$prefix"
}

# Busy and total ticks of the whole machine (all CPUs) from /proc/stat.
machine_ticks() { awk '/^cpu / {b = $2 + $3 + $4 + $7 + $8 + $9; t = b + $5 + $6; print b, t; exit}' /proc/stat; }

# CPU time of this shell's finished children so far (bash `times`, second line), in ticks,
# into CHILD_TICKS. Not in a subshell: a subshell's `times` does not see our children.
children_ticks() {
    times >"$BENCH_DIR/times.txt"
    CHILD_TICKS=$(awk -v hz="$CLK_TCK" 'NR == 2 {
        s = 0
        for (i = 1; i <= 2; i++) { split($i, p, "m"); s += p[1] * 60 + p[2] }
        printf "%d", s * hz + 0.5 }' "$BENCH_DIR/times.txt")
}

wait_port() { # port [seconds]
    local i
    for ((i = 0; i < ${2:-10} * 20; i++)); do
        if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/"; then return 0; fi
        sleep 0.05
    done
    return 1
}

# Starts a command in the background, optionally pinned; records its pid in BENCH_PIDS
# and in SPAWNED (not printed: a command substitution would run it in a subshell).
spawn() { # role logfile cmd...
    local role=$1 out=$2
    shift 2
    # shellcheck disable=SC2046
    $(pin "$role") "$@" >"$out" 2>&1 &
    SPAWNED=$!
    BENCH_PIDS+=("$SPAWNED")
    prioritize "$SPAWNED"
}

# Gives the autogroup (session) of pid the nice level NICE (see NICE above).
prioritize() {
    [ "$NICE" != 0 ] && [ -w "/proc/$1/autogroup" ] || return 0
    local i
    for ((i = 0; i < 20; i++)); do # setsid has run once the session id is the pid
        [ "$(awk '{print $6}' "/proc/$1/stat" 2>/dev/null)" = "$1" ] && break
        sleep 0.01
    done
    echo "$NICE" >"/proc/$1/autogroup" 2>/dev/null || true
}

stop_pid() { # pid: TERM, then KILL after 3 s
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do stop_pid "$pid"; done
    # nginx workers die with their master; anything left of ours in the temp dir goes too.
    if [ -n "${BENCH_DIR:-}" ] && [ -d "$BENCH_DIR" ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$BENCH_DIR"; fi
}

# The pid and its children (nginx: master + workers).
pid_tree() { echo "$1" $(pgrep -P "$1" 2>/dev/null || true); }

# Clock ticks of the given pids (all their threads) from /proc/PID/stat, counted after the
# ")" that ends the command name: after ") " the first field is field 3 (state), so utime
# (field 14) is the 12th and stime (field 15) the 13th. `what`: all (utime+stime) or kernel.
stat_ticks() { # what pids...
    local what=$1 total=0 pid rest
    shift
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || continue
        rest=$(sed 's/^.*) //' "/proc/$pid/stat")
        total=$((total + $(echo "$rest" | awk -v w="$what" '{print (w == "kernel" ? 0 : $12) + $13}')))
    done
    echo "$total"
}
# utime+stime, in clock ticks, of the given pids.
cpu_ticks() { stat_ticks all "$@"; }
# stime alone (kernel time), in clock ticks, of the given pids.
sys_ticks() { stat_ticks kernel "$@"; }

# 100-byte JSON body served by the upstream.
BODY='{"id":12345,"name":"gatehouse-bench","ok":true,"items":[1,2,3,4,5],"note":"a small static body.."}'

write_upstream_conf() { # dir
    local d=$1
    mkdir -p "$d/upstream/logs" "$d/upstream/tmp"
    cat >"$d/upstream/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $d/upstream/nginx.pid;
error_log $d/upstream/logs/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $d/upstream/tmp/body;
    proxy_temp_path $d/upstream/tmp/proxy;
    fastcgi_temp_path $d/upstream/tmp/fastcgi;
    uwsgi_temp_path $d/upstream/tmp/uwsgi;
    scgi_temp_path $d/upstream/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$UPSTREAM_PORT reuseport backlog=4096;
        location / {
            default_type application/json;
            return 200 '$BODY';
        }
    }
    server {
        listen 127.0.0.1:$STATUS_PORT;
        location / { stub_status; }
    }
}
EOF
}

start_upstream() { # dir -> SPAWNED
    write_upstream_conf "$1"
    port_free "$UPSTREAM_PORT" || die "port $UPSTREAM_PORT busy (set BASE_PORT)"
    port_free "$STATUS_PORT" || die "port $STATUS_PORT busy (set BASE_PORT)"
    spawn load "$1/upstream/stderr.log" nginx -p "$1/upstream" -c "$1/upstream/nginx.conf" -e "$1/upstream/logs/error.log"
    wait_port "$UPSTREAM_PORT" || die "upstream nginx did not start: $(cat "$1/upstream/stderr.log" "$1/upstream/logs/error.log" 2>/dev/null)"
}

write_gatehouse_conf() { # dir
    local d=$1
    mkdir -p "$d/gatehouse"
    cat >"$d/gatehouse/gatehouse.yaml" <<EOF
server: { listen: ["127.0.0.1:$GATEHOUSE_PORT"], workers: 1 }
upstreams: { api: { targets: ["http://127.0.0.1:$UPSTREAM_PORT"], max_idle_per_worker: 64 } }
routes: [ { name: public, match: { path: "/**" }, upstream: api, auth: none } ]
access_log: { path: $d/gatehouse/access.log, format: json }
EOF
    "$GATEHOUSE_BIN" check --config "$d/gatehouse/gatehouse.yaml" >"$d/gatehouse/check.txt" 2>&1 \
        || die "gatehouse check failed: $(cat "$d/gatehouse/check.txt")"
}

start_gatehouse() { # dir -> SPAWNED
    write_gatehouse_conf "$1"
    port_free "$GATEHOUSE_PORT" || die "port $GATEHOUSE_PORT busy (set BASE_PORT)"
    spawn proxy "$1/gatehouse/stderr.log" "$GATEHOUSE_BIN" run --config "$1/gatehouse/gatehouse.yaml"
    wait_port "$GATEHOUSE_PORT" || die "gatehouse did not start: $(cat "$1/gatehouse/stderr.log")"
}

# gatehouse for jwt.sh and callgrind-jwt.sh, with the keys of jwt_tokens.py in KEYS: run.sh's
# settings (one worker, pool of 64, JSON access log) and three issuers, one per algorithm (so
# tokens carry iss), each with a route that allows only that issuer and requires the role admin;
# the public route last, matching everything else.
write_gatehouse_jwt_conf() { # dir
    local d=$1
    mkdir -p "$d/gatehouse"
    cat >"$d/gatehouse/gatehouse.yaml" <<EOF
server: { listen: ["127.0.0.1:$GATEHOUSE_PORT"], workers: 1 }
upstreams: { api: { targets: ["http://127.0.0.1:$UPSTREAM_PORT"], max_idle_per_worker: 64 } }
jwt:
  issuers:
    - { name: hs, issuer: bench-hs, algorithms: [HS256], secret_file: $KEYS/hs.secret }
    - { name: rs, issuer: bench-rs, algorithms: [RS256], jwks_file: $KEYS/jwks.json }
    - { name: es, issuer: bench-es, algorithms: [ES256], jwks_file: $KEYS/jwks.json }
$([ -z "${INTRO_PORT:-}" ] || echo "    - { name: intro, issuer: \"http://127.0.0.1:$INTRO_PORT\", audiences: [bench-api], algorithms: [RS256], discovery: true, introspection: { client_id: bench, client_secret_file: $KEYS/hs.secret } }")
routes:
  - { name: rs, match: { path: "/rs/**" }, upstream: api, issuers: [rs], require: { roles_any: [admin] } }
  - { name: es, match: { path: "/es/**" }, upstream: api, issuers: [es], require: { roles_any: [admin] } }
  - { name: hs, match: { path: "/hs/**" }, upstream: api, issuers: [hs], require: { roles_any: [admin] } }
$([ -z "${INTRO_PORT:-}" ] || echo '  - { name: intro, match: { path: "/intro/**" }, upstream: api, issuers: [intro], require: { roles_any: [admin] } }')
  - { name: public, match: { path: "/**" }, upstream: api, auth: none }
access_log: { path: $d/gatehouse/access.log, format: json }
EOF
    "$GATEHOUSE_BIN" check --config "$d/gatehouse/gatehouse.yaml" >"$d/gatehouse/check.txt" 2>&1 \
        || die "gatehouse check failed: $(cat "$d/gatehouse/check.txt")"
}

# nginx as a reverse proxy, doing what gatehouse does per request: keep-alive upstream pool,
# X-Forwarded-*, a request id both ways, a JSON access-log line per request.
# NGINX_LOG_BUFFER=64k (default) buffers log writes like gatehouse's log sink does (flushed
# every second); NGINX_LOG_BUFFER=0 writes one line per request with its own write().
write_nginx_proxy_conf() { # dir
    local d=$1 buffer=""
    mkdir -p "$d/nginx-proxy/logs" "$d/nginx-proxy/tmp"
    if [ "${NGINX_LOG_BUFFER:-64k}" != 0 ]; then buffer=" buffer=${NGINX_LOG_BUFFER:-64k} flush=1s"; fi
    cat >"$d/nginx-proxy/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $d/nginx-proxy/nginx.pid;
error_log $d/nginx-proxy/logs/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    log_format gh escape=json '{"ts":"\$time_iso8601","request_id":"\$request_id","client":"\$remote_addr",'
        '"method":"\$request_method","path":"\$uri","status":\$status,"bytes_sent":\$bytes_sent,'
        '"duration_ms":\$request_time,"upstream":"\$upstream_addr","upstream_status":"\$upstream_status",'
        '"upstream_ms":"\$upstream_response_time","user_agent":"\$http_user_agent"}';
    access_log $d/nginx-proxy/logs/access.log gh$buffer;
    client_body_temp_path $d/nginx-proxy/tmp/body;
    proxy_temp_path $d/nginx-proxy/tmp/proxy;
    fastcgi_temp_path $d/nginx-proxy/tmp/fastcgi;
    uwsgi_temp_path $d/nginx-proxy/tmp/uwsgi;
    scgi_temp_path $d/nginx-proxy/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    upstream api {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive 64;
        keepalive_requests 10000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PROXY_PORT reuseport backlog=4096;
        location / {
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Request-Id \$request_id;
            add_header X-Request-Id \$request_id;
        }
    }
}
EOF
}

start_nginx_proxy() { # dir -> SPAWNED (the master)
    write_nginx_proxy_conf "$1"
    port_free "$NGINX_PROXY_PORT" || die "port $NGINX_PROXY_PORT busy (set BASE_PORT)"
    spawn proxy "$1/nginx-proxy/stderr.log" nginx -p "$1/nginx-proxy" -c "$1/nginx-proxy/nginx.conf" -e "$1/nginx-proxy/logs/error.log"
    wait_port "$NGINX_PROXY_PORT" || die "nginx proxy did not start: $(cat "$1/nginx-proxy/stderr.log" "$1/nginx-proxy/logs/error.log" 2>/dev/null)"
}

# HAProxy: one thread, HTTP mode, server-side keep-alive shared by all clients
# (http-reuse always), X-Forwarded-For, a request id both ways. Logging is off ("no log"):
# HAProxy logs only through syslog, and a syslog daemon on the path would measure rsyslog,
# not HAProxy.
# An optional second argument holds extra frontend rules (jwt.sh adds its token checks there).
write_haproxy_conf() { # dir [extra frontend lines]
    local d=$1 extra=${2:-}
    mkdir -p "$d/haproxy"
    cat >"$d/haproxy/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8192
    tune.bufsize 16384
defaults
    mode http
    no log
    option http-keep-alive
    option forwardfor
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 300s
    unique-id-format %{+X}o%ci:%cp_%fi:%fp_%Ts_%rt:%pid
frontend fe
    bind 127.0.0.1:$HAPROXY_PORT
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Request-Id %[unique-id]
    http-response set-header X-Request-Id %[unique-id]
${extra}
    default_backend api
backend api
    server s1 127.0.0.1:$UPSTREAM_PORT maxconn 64
EOF
    haproxy -c -q -f "$d/haproxy/haproxy.cfg" >"$d/haproxy/check.txt" 2>&1 \
        || die "haproxy config invalid: $(cat "$d/haproxy/check.txt")"
}

start_haproxy() { # dir -> SPAWNED
    write_haproxy_conf "$1"
    port_free "$HAPROXY_PORT" || die "port $HAPROXY_PORT busy (set BASE_PORT)"
    spawn proxy "$1/haproxy/stderr.log" haproxy -db -f "$1/haproxy/haproxy.cfg"
    wait_port "$HAPROXY_PORT" || die "haproxy did not start: $(cat "$1/haproxy/stderr.log")"
}

# Requests the upstream has served so far (its stub_status), whoever sent them.
upstream_requests() {
    curl -s --max-time 2 "http://127.0.0.1:$STATUS_PORT/" | awk 'NR == 3 {print $3}'
}

# Fails unless the proxy on `port` answers 200 with the upstream's body.
check_body() { # port name
    local got
    got=$(curl -s --max-time 2 "http://127.0.0.1:$1/bench") || die "$2: no answer"
    [ "$got" = "$BODY" ] || die "$2: unexpected body: $got"
}

run_wrk() { # port duration outfile
    # shellcheck disable=SC2046
    $(pin load) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2" --latency "http://127.0.0.1:$1/bench" >"$3" 2>&1 &
    local pid=$!
    prioritize "$pid"
    wait "$pid" || die "wrk failed: $(cat "$3")"
}
