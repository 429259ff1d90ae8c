#!/usr/bin/env bash
# A throw-away devpi-core cluster on 127.0.0.1: PostgreSQL, moto's S3 server, NODES devpi-core
# nodes sharing one configuration, and HAProxy in front (health checks on GET /+ready).
#
#   contrib/cluster/local-cluster.sh start DIR [NODES]   start everything (NODES: default 3)
#   contrib/cluster/local-cluster.sh restart-node DIR I  start node I again (after a kill)
#   contrib/cluster/local-cluster.sh stop DIR            stop everything, by the PIDs in DIR
#   contrib/cluster/local-cluster.sh stop-postgres DIR   stop PostgreSQL only (data kept);
#       start-postgres DIR starts it again, restart-postgres DIR does both
#
# "start" prints KEY=VALUE lines: LB_URL, STATS_URL, NODE<i>_URL, NODE<i>_PID, CONFIG, PG_DSN,
# S3_ENDPOINT, ROOT_PASSWORD (also kept in DIR/cluster.env). The nodes come from the venv in
# $DEVPI_CORE_VENV (default .venv; it needs devpi-core[postgresql,s3] and moto[server]).
# $DEVPI_CORE_CLUSTER_CONFIG names a YAML file merged over the generated configuration
# (section by section). PostgreSQL comes from Debian (/usr/lib/postgresql/*/bin), HAProxy from
# the haproxy package. As root, PostgreSQL runs as the system user postgres (or devpi-pgtest,
# created if missing), in a directory under /tmp that user can reach.
set -euo pipefail

START_TIMEOUT=${DEVPI_CORE_CLUSTER_TIMEOUT:-60}
PG_TEST_USER=devpi-pgtest
BUCKET=devpi
POOL_MAX=10

die() { echo "local-cluster: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 start DIR [NODES] | restart-node DIR I | stop DIR" >&2
    echo "       $0 stop-postgres DIR | start-postgres DIR | restart-postgres DIR" >&2
    exit 2
}

find_tool() {  # a program on PATH or in the sbin directories
    PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v "$1" || die "$1 is not installed ($2)"
}

pg_bin() {  # the newest Debian PostgreSQL's program, or one on PATH
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$found" ] || found=$(command -v "$1" || true)
    [ -n "$found" ] || die "PostgreSQL ($1) is not installed: apt-get install postgresql"
    echo "$found"
}

pg_user() {  # empty when not root; else a system user that may run PostgreSQL
    [ "$(id -u)" = 0 ] || return 0
    local name
    for name in postgres "$PG_TEST_USER"; do
        if id "$name" >/dev/null 2>&1; then echo "$name"; return 0; fi
    done
    "$(find_tool useradd 'needed to run PostgreSQL as root')" --system --no-create-home \
        --shell /bin/sh "$PG_TEST_USER"
    echo "$PG_TEST_USER"
}

as_pg() {  # run a PostgreSQL program as $PGUSER (when root)
    if [ -n "$PGUSER_NAME" ]; then
        "$(find_tool runuser 'needed to run PostgreSQL as root')" -u "$PGUSER_NAME" -- "$@"
    else
        "$@"
    fi
}

py() { "$PY" "$@"; }

free_port() {
    py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() {  # wait_http URL STATUS TIMEOUT [PID]: until URL answers STATUS (PID must live)
    py - "$@" <<'EOF'
import os, sys, time, urllib.error, urllib.request
url, want, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
pid = int(sys.argv[4]) if len(sys.argv) > 4 else None
deadline = time.monotonic() + timeout
while True:
    status = None
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError:
        pass
    if status == want:
        sys.exit(0)
    if pid is not None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit(f"process {pid} for {url} exited")
    if time.monotonic() > deadline:
        sys.exit(f"{url} did not answer {want} within {timeout} s (last: {status})")
    time.sleep(0.05)
EOF
}

wait_announce() {  # wait_announce LOGFILE PID TIMEOUT: print the URL the node announces
    py - "$@" <<'EOF'
import os, re, sys, time
path, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
pattern = re.compile(r"serving .* on (http://\S+?)/?$", re.M)
while True:
    try:
        found = pattern.search(open(path, encoding="utf-8", errors="replace").read())
    except FileNotFoundError:
        found = None
    if found:
        print(found.group(1))
        sys.exit(0)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(f"node {pid} exited; see {path}")
    if time.monotonic() > deadline:
        sys.exit(f"node {pid} did not start within {timeout} s; see {path}")
    time.sleep(0.05)
EOF
}

alive() {  # a running process (a zombie, killed but not yet reaped, is not)
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
    local state
    state=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null || true)
    [ "$state" != Z ]
}

write_config() {  # the YAML every node reads (merged with $DEVPI_CORE_CLUSTER_CONFIG)
    py - "$CONFIG" "$PG_DSN" "$S3_ENDPOINT" "$BUCKET" "$POOL_MAX" \
        "${DEVPI_CORE_CLUSTER_CONFIG:-}" <<'EOF'
import sys
from ruamel.yaml import YAML
path, dsn, endpoint, bucket, pool_max, extra = sys.argv[1:]
config = {
    "server": {"host": "127.0.0.1"},
    "storage": {"metadata": "postgresql", "blobs": "s3"},
    "plugins": {
        "pgstore": {"dsn": dsn, "pool_max": int(pool_max)},
        "s3store": {
            "bucket": bucket, "endpoint_url": endpoint, "region": "us-east-1",
            "addressing_style": "path", "access_key_id": "testing",
            "secret_access_key": "testing",
        },
    },
}
if extra:
    with open(extra, encoding="utf-8") as f:
        for section, values in (YAML(typ="safe").load(f) or {}).items():
            if isinstance(values, dict) and isinstance(config.get(section), dict):
                for key, value in values.items():
                    if isinstance(value, dict) and isinstance(config[section].get(key), dict):
                        config[section][key].update(value)
                    else:
                        config[section][key] = value
            else:
                config[section] = values
with open(path, "w", encoding="utf-8") as f:
    YAML().dump(config, f)
EOF
}

start_node() {  # start_node I [PORT]: start node I in the background, record its PID
    local i=$1 port=${2:-0}
    "$VENV/bin/devpi-core" serve --serverdir "$DIR/node$i" --config "$CONFIG" \
        --host 127.0.0.1 --port "$port" </dev/null >"$DIR/node$i.log" 2>&1 &
    echo $! >"$DIR/node$i.pid"
}

write_haproxy() {  # write_haproxy NODES
    local n=$1 i
    {
        cat <<EOF
global
    maxconn 2000
    pidfile $DIR/haproxy.pidfile
    # the runtime API (disable server nodes/node2, show stat): socat or a script
    stats socket $DIR/haproxy.sock mode 600 level admin

defaults
    mode http
    option httplog
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout http-request 60s
    # a busy node answers /+ready late but is up: the check's time-out (by default "inter",
    # 300 ms) marked healthy nodes DOWN under load; a killed node refuses at once anyway
    timeout check 2s
    # a request that could not reach a node (refused) goes to another; so do a GET or HEAD
    # that got no answer or a 5xx (repeating it changes nothing), see "nodes" below
    retries 3
    retry-on all-retryable-errors
    option redispatch 1

frontend devpi
    bind 127.0.0.1:$LB_PORT
    default_backend nodes

backend nodes
    balance roundrobin
    # a client's keep-alive connection stays on one node while it is up: an installer asks
    # for a page, then for files of it, and the node that fetched the page has it parsed in
    # memory (another node reads it back from the database); new connections still spread.
    # Without "http-reuse never" idle node connections are shared and the preference is lost.
    option prefer-last-server
    http-reuse never
    # other methods only when the connection failed: a node may have acted on them
    http-request disable-l7-retry unless METH_GET
    option httpchk GET /+ready
    http-check expect status 200
    default-server inter 300ms fastinter 200ms downinter 500ms fall 2 rise 2
EOF
        for i in $(seq 1 "$n"); do
            echo "    server node$i 127.0.0.1:$(cat "$DIR/node$i.port") check"
        done
        cat <<EOF

listen stats
    bind 127.0.0.1:$STATS_PORT
    stats enable
    stats uri /
    stats refresh 5s
EOF
    } >"$DIR/haproxy.cfg"
}

wait_backends_up() {  # until HAProxy's stats list every node UP
    py - "$STATS_URL" "$1" "$START_TIMEOUT" <<'EOF'
import csv, io, sys, time, urllib.request
url, nodes, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
while True:
    try:
        with urllib.request.urlopen(url + ";csv", timeout=2) as response:
            rows = list(csv.DictReader(io.StringIO(response.read().decode().lstrip("# "))))
        up = [r for r in rows if r["pxname"] == "nodes" and r["svname"].startswith("node")
              and r["status"] == "UP"]
        if len(up) == nodes:
            sys.exit(0)
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"HAProxy did not see {nodes} nodes up within {timeout} s")
    time.sleep(0.05)
EOF
}

cmd_start() {
    local nodes=${1:-3} i pids=()
    case "$nodes" in ''|*[!0-9]*|0) die "NODES must be a positive number" ;; esac
    [ ! -e "$DIR/cluster.env" ] || die "$DIR holds a cluster already (stop it first)"
    # a start that fails half-way stops what it started
    trap 'cmd_stop >/dev/null 2>&1 || true' EXIT
    local initdb pg_ctl createdb haproxy moto
    initdb=$(pg_bin initdb); pg_ctl=$(pg_bin pg_ctl); createdb=$(pg_bin createdb)
    haproxy=$(find_tool haproxy "apt-get install haproxy")
    moto="$VENV/bin/moto_server"
    [ -x "$moto" ] || die "$moto is missing: pip install 'moto[server]' into $VENV"
    [ -x "$VENV/bin/devpi-core" ] || die "$VENV/bin/devpi-core is missing (DEVPI_CORE_VENV)"
    PGUSER_NAME=$(pg_user)

    local s3_port
    s3_port=$(free_port)
    "$moto" -H 127.0.0.1 -p "$s3_port" </dev/null >"$DIR/moto.log" 2>&1 &
    echo $! >"$DIR/moto.pid"
    S3_ENDPOINT="http://127.0.0.1:$s3_port"

    # PostgreSQL: fsync off, it is thrown away; the system user must reach its directory
    local pgdir
    if [ -n "$PGUSER_NAME" ]; then
        pgdir=$(mktemp -d /tmp/devpi-cluster-pg.XXXXXX)
        chown "$PGUSER_NAME" "$pgdir"
    else
        pgdir="$DIR/pg"
        mkdir -p "$pgdir"
    fi
    echo "$pgdir" >"$DIR/pgdir"
    echo "$PGUSER_NAME" >"$DIR/pguser"
    local pg_port max_conn
    pg_port=$(free_port)
    max_conn=$(( nodes * (POOL_MAX + 1) + 20 ))
    as_pg "$initdb" -D "$pgdir/data" -A trust -U devpi -E UTF8 --no-sync >"$DIR/initdb.log" 2>&1 \
        || die "initdb failed; see $DIR/initdb.log"
    echo "-k $pgdir -c listen_addresses=127.0.0.1 -p $pg_port -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c max_connections=$max_conn" >"$DIR/pgopts"
    pg_start
    as_pg "$createdb" -h 127.0.0.1 -p "$pg_port" -U devpi devpi
    PG_DSN="host=127.0.0.1 port=$pg_port user=devpi dbname=devpi"

    # S3: a bucket on moto's server (started first: it starts while PostgreSQL does)
    wait_http "$S3_ENDPOINT/moto-api/" 200 "$START_TIMEOUT" "$(cat "$DIR/moto.pid")"
    py -c 'import sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1], method="PUT"))' \
        "$S3_ENDPOINT/$BUCKET"

    # the nodes: one configuration, initialised once, then started together
    CONFIG="$DIR/config.yml"
    write_config
    local root_password
    root_password=$(py -c 'import secrets; print(secrets.token_urlsafe(18))')
    "$VENV/bin/devpi-core" init --serverdir "$DIR/node1" --config "$CONFIG" \
        --root-passwd="$root_password" >"$DIR/init.log" 2>&1 \
        || die "devpi-core init failed; see $DIR/init.log"
    for i in $(seq 1 "$nodes"); do start_node "$i"; done
    for i in $(seq 1 "$nodes"); do
        local url
        url=$(wait_announce "$DIR/node$i.log" "$(cat "$DIR/node$i.pid")" "$START_TIMEOUT")
        echo "${url##*:}" >"$DIR/node$i.port"
    done

    # HAProxy in front, checking GET /+ready
    LB_PORT=$(free_port); STATS_PORT=$(free_port)
    STATS_URL="http://127.0.0.1:$STATS_PORT/"
    write_haproxy "$nodes"
    "$haproxy" -c -q -f "$DIR/haproxy.cfg" || die "HAProxy rejected $DIR/haproxy.cfg"
    "$haproxy" -db -f "$DIR/haproxy.cfg" </dev/null >"$DIR/haproxy.log" 2>&1 &
    echo $! >"$DIR/haproxy.pid"
    wait_backends_up "$nodes"

    {
        echo "LB_URL=http://127.0.0.1:$LB_PORT"
        echo "STATS_URL=$STATS_URL"
        for i in $(seq 1 "$nodes"); do
            echo "NODE${i}_URL=http://127.0.0.1:$(cat "$DIR/node$i.port")"
            echo "NODE${i}_PID=$(cat "$DIR/node$i.pid")"
        done
        echo "CONFIG=$CONFIG"
        echo "PG_DSN=$PG_DSN"
        echo "S3_ENDPOINT=$S3_ENDPOINT"
        echo "ROOT_PASSWORD=$root_password"
    } >"$DIR/cluster.env"
    chmod 600 "$DIR/cluster.env"
    trap - EXIT
    cat "$DIR/cluster.env"
}

pg_start() {  # start the cluster's PostgreSQL (again), with the options kept in DIR/pgopts
    local pgdir
    pgdir=$(cat "$DIR/pgdir")
    as_pg "$(pg_bin pg_ctl)" -D "$pgdir/data" -l "$pgdir/log" -w -t "$START_TIMEOUT" \
        -o "$(cat "$DIR/pgopts")" start >"$DIR/pg_ctl.log" 2>&1 \
        || die "PostgreSQL did not start; see $pgdir/log"
    head -n 1 "$pgdir/data/postmaster.pid" >"$DIR/postgres.pid"
}

pg_stop() {  # stop the cluster's PostgreSQL (fast: open sessions are ended), keep its data
    local pgdir
    pgdir=$(cat "$DIR/pgdir")
    if [ -f "$pgdir/data/postmaster.pid" ]; then
        as_pg "$(pg_bin pg_ctl)" -D "$pgdir/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
            || stop_pids "$DIR/postgres.pid"
    fi
    rm -f "$DIR/postgres.pid"
}

cmd_postgres() {  # cmd_postgres start|stop|restart: PostgreSQL alone, the nodes keep running
    [ -f "$DIR/pgdir" ] && [ -f "$DIR/pgopts" ] || die "no PostgreSQL in $DIR"
    PGUSER_NAME=$(cat "$DIR/pguser" 2>/dev/null || true)
    case "$1" in
        stop) pg_stop ;;
        start) [ ! -f "$DIR/postgres.pid" ] || die "PostgreSQL is running"; pg_start ;;
        restart) pg_stop; pg_start ;;
    esac
    echo "PG_PID=$(cat "$DIR/postgres.pid" 2>/dev/null || true)"
}

cmd_restart_node() {
    local i=$1
    [ -f "$DIR/node$i.port" ] || die "no node $i in $DIR"
    ! alive "$(cat "$DIR/node$i.pid")" || die "node $i is running"
    CONFIG="$DIR/config.yml"
    start_node "$i" "$(cat "$DIR/node$i.port")"
    local url
    url=$(wait_announce "$DIR/node$i.log" "$(cat "$DIR/node$i.pid")" "$START_TIMEOUT")
    wait_http "$url/+ready" 200 "$START_TIMEOUT" "$(cat "$DIR/node$i.pid")"
    (  # restarts of several nodes may run at once
        flock 9
        sed -i "s/^NODE${i}_PID=.*/NODE${i}_PID=$(cat "$DIR/node$i.pid")/" "$DIR/cluster.env"
    ) 9>>"$DIR/cluster.env.lock"
    echo "NODE${i}_URL=$url"
    echo "NODE${i}_PID=$(cat "$DIR/node$i.pid")"
}

stop_pids() {  # stop_pids FILE...: SIGTERM the processes named in FILEs, SIGKILL after 15 s
    local file pid pids=() deadline
    for file in "$@"; do
        [ -f "$file" ] || continue
        pid=$(cat "$file")
        if alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
    done
    deadline=$(( SECONDS + 15 ))
    for pid in "${pids[@]}"; do
        while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
        if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    rm -f "$@"
}

cmd_stop() {
    [ -d "$DIR" ] || die "no directory $DIR"
    stop_pids "$DIR/haproxy.pid"
    stop_pids "$DIR"/node*.pid "$DIR/moto.pid"
    if [ -f "$DIR/pgdir" ]; then
        local pgdir
        pgdir=$(cat "$DIR/pgdir")
        PGUSER_NAME=$(cat "$DIR/pguser" 2>/dev/null || true)
        pg_stop
        case "$pgdir" in /tmp/devpi-cluster-pg.*) rm -rf "$pgdir" ;; esac
        rm -f "$DIR/pgdir" "$DIR/pguser" "$DIR/pgopts"
    fi
    rm -f "$DIR/cluster.env" "$DIR/cluster.env.lock"
}

[ $# -ge 2 ] || usage
COMMAND=$1
DIR=$(mkdir -p "$2" && cd "$2" && pwd)
VENV=$(cd "${DEVPI_CORE_VENV:-.venv}" 2>/dev/null && pwd) || VENV=""
PY="${VENV:+$VENV/bin/}python3"
command -v "$PY" >/dev/null || PY=python3
PGUSER_NAME=""
case "$COMMAND" in
    start) [ -n "$VENV" ] || die "no venv at ${DEVPI_CORE_VENV:-.venv} (DEVPI_CORE_VENV)"
           [ $# -le 3 ] || usage; cmd_start "${3:-3}" ;;
    restart-node) [ $# -eq 3 ] && [ -n "$VENV" ] || usage; cmd_restart_node "$3" ;;
    stop-postgres|start-postgres|restart-postgres)
           [ $# -eq 2 ] || usage; cmd_postgres "${COMMAND%-postgres}" ;;
    stop) [ $# -eq 2 ] || usage; cmd_stop ;;
    *) usage ;;
esac
