#!/usr/bin/env bash
# Local infrastructure without Docker: PostgreSQL (private cluster) + Apache Kafka (KRaft, one
# combined broker+controller), both on 127.0.0.1, state under <repo>/.state/.
#
#   deploy/local/infra.sh start    # idempotent; prints DATABASE_URL=... and KAFKA_BOOTSTRAP_SERVERS=...
#   deploy/local/infra.sh stop     # stops only what this script started (never an external server)
#   deploy/local/infra.sh status   # what runs where (exit 3 when a private server is down)
#   deploy/local/infra.sh restart-postgres|restart-kafka [--crash]
#                                  # restart one private server on its same port; --crash stops it
#                                  # the hard way (PostgreSQL immediate shutdown, Kafka SIGKILL)
#
# DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS, when set and reachable, are used instead of local servers.
# stdout carries only the two KEY=VALUE lines of `start` (conftest.py parses them); everything else
# goes to stderr. The values are also written to .state/infra.env as `export` lines.
#
# Tunables (env): DESK_STATE_DIR (default <repo>/.state), KAFKA_LIBS_DIR (default
# deploy/local/kafka-libs), KAFKA_HEAP_OPTS (default "-Xms256m -Xmx512m"), INFRA_START_TIMEOUT (s, 120).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="${DESK_STATE_DIR:-$ROOT/.state}"
PG_DIR="$STATE/postgres"
PG_DATA="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"
PG_DB="desk"
KAFKA_DIR="$STATE/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOG="$KAFKA_DIR/kafka.log"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_POM="$HERE/kafka/pom.xml"
KAFKA_LIBS="${KAFKA_LIBS_DIR:-$HERE/kafka-libs}"
ENV_FILE="$STATE/infra.env"
START_TIMEOUT="${INFRA_START_TIMEOUT:-120}"

log() { echo "[infra] $*" >&2; }
die() { echo "[infra] ERROR: $*" >&2; exit 1; }

# Python with the workspace's dependencies (aiokafka, asyncpg, desk_contracts).
py() {
    if command -v uv >/dev/null 2>&1; then
        (cd "$ROOT" && uv run --frozen --quiet python "$@")
    elif [ -x "$ROOT/.venv/bin/python" ]; then
        "$ROOT/.venv/bin/python" "$@"
    else
        die "neither uv nor $ROOT/.venv found: run 'uv sync --all-packages' first"
    fi
}

free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "cannot install $* (no apt-get): install it by hand"
    log "installing $* with apt-get (one-time)"
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "${_APT_UPDATED:-}" ]; then
        apt-get update -qq >&2 || die "apt-get update failed"
        _APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------
pg_bindir() {
    local want="" dir
    [ -f "$PG_DATA/PG_VERSION" ] && want="$(cat "$PG_DATA/PG_VERSION")"
    if [ -n "$want" ] && [ -x "/usr/lib/postgresql/$want/bin/initdb" ]; then
        echo "/usr/lib/postgresql/$want/bin"; return 0
    fi
    # shellcheck disable=SC2012  # version directories are plain numbers
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
    if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
    return 1
}

as_pg() {  # run a command as the postgres system user when we are root (initdb refuses root)
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_running() {  # our private cluster is up (pid in postmaster.pid alive and really a postgres)
    local pid
    [ -f "$PG_DATA/postmaster.pid" ] || return 1
    pid="$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "postgres" || return 1
}

pg_url() { echo "postgresql://postgres@127.0.0.1:$1/$PG_DB"; }

pg_start_private() {
    local bindir port
    if ! bindir="$(pg_bindir)"; then
        apt_install postgresql
        bindir="$(pg_bindir)" || die "PostgreSQL server binaries still missing after apt-get install"
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    mkdir -p "$PG_DIR"
    chmod 755 "$STATE" "$PG_DIR"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$PG_DIR"; fi
    # every parent must be traversable by the postgres user
    local d="$PG_DIR"
    while [ "$d" != "/" ]; do
        d="$(dirname "$d")"
        as_pg test -x "$d" || { log "making $d traversable for postgres"; chmod o+x "$d"; }
    done

    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        rm -rf "$PG_DATA"
        log "initdb $PG_DATA ($bindir)"
        as_pg "$bindir/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C >"$PG_DIR/initdb.log" 2>&1 \
            || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed (log: $PG_DIR/initdb.log)"; }
        cat >>"$PG_DATA/postgresql.conf" <<'EOF'

# --- deploy/local/infra.sh ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
EOF
    fi

    if pg_running; then
        port="$(cat "$PG_DIR/port")"
        log "PostgreSQL already running on 127.0.0.1:$port (data $PG_DATA)"
    else
        if [ -f "$PG_DATA/postmaster.pid" ]; then
            log "removing stale $PG_DATA/postmaster.pid"
            rm -f "$PG_DATA/postmaster.pid"
        fi
        port="$(cat "$PG_DIR/port" 2>/dev/null || true)"
        if [ -z "$port" ] || port_in_use "$port"; then
            [ -z "$port" ] || log "port $port is taken by another process; choosing a new one"
            port="$(free_port)"
        fi
        echo "$port" >"$PG_DIR/port"
        log "starting PostgreSQL on 127.0.0.1:$port (log $PG_LOG)"
        as_pg "$bindir/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$START_TIMEOUT" -o "-p $port" start >&2 9>&- \
            || { tail -n 30 "$PG_LOG" >&2 || true; die "PostgreSQL did not start (log: $PG_LOG)"; }
    fi
    local psql=("$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -X -q -v ON_ERROR_STOP=1)
    if [ "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]; then
        log "creating database $PG_DB"
        "${psql[@]}" -d postgres -c "CREATE DATABASE $PG_DB" >&2 \
            || "${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1 \
            || die "could not create database $PG_DB on 127.0.0.1:$port"
    fi
    DATABASE_URL="$(pg_url "$port")"
}

pg_stop_private() {
    local bindir
    if pg_running; then
        bindir="$(pg_bindir)" || die "cannot find pg_ctl to stop $PG_DATA"
        log "stopping PostgreSQL ($PG_DATA)"
        as_pg "$bindir/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >&2 || die "pg_ctl stop failed (log: $PG_LOG)"
    else
        log "PostgreSQL (private) is not running"
    fi
}

# ---------------------------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------------------------
kafka_pid() {  # prints the pid of our running broker, if any (adopts an orphan without pid file)
    local pid=""
    if [ -f "$KAFKA_PID" ]; then
        pid="$(cat "$KAFKA_PID" 2>/dev/null || true)"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
            && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $KAFKA_PROPS"; then
            echo "$pid"; return 0
        fi
    fi
    pid="$(pgrep -f -x ".*java .*kafka\.Kafka $KAFKA_PROPS" 2>/dev/null | head -n 1 || true)"
    if [ -n "$pid" ]; then echo "$pid" >"$KAFKA_PID"; echo "$pid"; return 0; fi
    return 1
}

kafka_libs() {
    local stamp
    stamp="$(sha256sum "$KAFKA_POM" | cut -c1-16)"
    if [ -f "$KAFKA_LIBS/.complete-$stamp" ]; then return 0; fi
    command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
    command -v mvn >/dev/null 2>&1 || apt_install maven
    log "resolving Apache Kafka jars with Maven into $KAFKA_LIBS (one-time)"
    local tmp="$KAFKA_LIBS.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$KAFKA_DIR"
    mvn -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies -DoutputDirectory="$tmp" \
        >"$KAFKA_DIR/mvn.log" 2>&1 \
        || { tail -n 40 "$KAFKA_DIR/mvn.log" >&2; rm -rf "$tmp"
             die "mvn could not resolve the Kafka jars (pom: $KAFKA_POM, log: $KAFKA_DIR/mvn.log)"; }
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    touch "$KAFKA_LIBS/.complete-$stamp"
}

kafka_java() {
    command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless
    echo java
}

kafka_write_config() {  # $1 broker port, $2 controller port
    cat >"$KAFKA_PROPS" <<EOF
# written by deploy/local/infra.sh on every start; edit the script, not this file
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$2
listeners=PLAINTEXT://127.0.0.1:$1,CONTROLLER://127.0.0.1:$2
advertised.listeners=PLAINTEXT://127.0.0.1:$1
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_DATA
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.segment.bytes=134217728
EOF
    cat >"$KAFKA_DIR/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

kafka_start_private() {
    local pid bport cport
    mkdir -p "$KAFKA_DIR"
    if pid="$(kafka_pid)"; then
        read -r bport cport <"$KAFKA_DIR/ports"
        log "Kafka already running (pid $pid) on 127.0.0.1:$bport"
    else
        if [ -f "$KAFKA_PID" ]; then log "removing stale $KAFKA_PID"; rm -f "$KAFKA_PID"; fi
        kafka_libs
        bport="" cport=""
        if [ -f "$KAFKA_DIR/ports" ]; then read -r bport cport <"$KAFKA_DIR/ports" || true; fi
        if [ -z "$bport" ] || [ -z "$cport" ] || port_in_use "$bport" || port_in_use "$cport"; then
            [ -n "$bport" ] && log "Kafka ports $bport/$cport are taken; choosing new ones"
            bport="$(free_port)"
            cport="$(free_port)"
            while [ "$cport" = "$bport" ]; do cport="$(free_port)"; done
            echo "$bport $cport" >"$KAFKA_DIR/ports"
        fi
        kafka_write_config "$bport" "$cport"
        local java cp="$KAFKA_LIBS/*"
        java="$(kafka_java)"
        # shellcheck disable=SC2206  # KAFKA_HEAP_OPTS is a space-separated list of JVM flags
        local jvm=(${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20
            -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
            "-Dlog4j2.configurationFile=$KAFKA_DIR/log4j2.properties")
        if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
            local cluster_id
            cluster_id="$(cat "$KAFKA_DIR/cluster.id" 2>/dev/null || true)"
            if [ -z "$cluster_id" ]; then
                cluster_id="$("$java" "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG" | tail -n 1)"
                echo "$cluster_id" >"$KAFKA_DIR/cluster.id"
            fi
            log "formatting Kafka storage $KAFKA_DATA (cluster $cluster_id)"
            "$java" "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format --ignore-formatted \
                -t "$cluster_id" -c "$KAFKA_PROPS" >>"$KAFKA_LOG" 2>&1 \
                || { tail -n 20 "$KAFKA_LOG" >&2; die "Kafka storage format failed (log: $KAFKA_LOG)"; }
        fi
        # A crashed broker leaves its .lock file behind; the OS lock died with it, so it is harmless,
        # but remove it anyway so nothing else ever mistakes it for a live broker.
        rm -f "$KAFKA_DATA/.lock"
        log "starting Kafka on 127.0.0.1:$bport (controller :$cport, log $KAFKA_LOG)"
        echo "=== start $(date -Is) ===" >>"$KAFKA_LOG"
        # no job control here, so setsid execs in place and $! is the JVM's pid
        setsid nohup "$java" "${jvm[@]}" -cp "$cp" kafka.Kafka "$KAFKA_PROPS" \
            </dev/null >>"$KAFKA_LOG" 2>&1 9>&- &
        pid=$!
        echo "$pid" >"$KAFKA_PID"
        local deadline=$((SECONDS + START_TIMEOUT))
        until port_in_use "$bport"; do
            if ! kill -0 "$pid" 2>/dev/null; then
                tail -n 30 "$KAFKA_LOG" >&2 || true
                rm -f "$KAFKA_PID"
                die "Kafka exited during start-up (log: $KAFKA_LOG)"
            fi
            if [ "$SECONDS" -ge "$deadline" ]; then
                tail -n 30 "$KAFKA_LOG" >&2 || true
                die "Kafka did not listen on 127.0.0.1:$bport within ${START_TIMEOUT}s (pid $pid, log: $KAFKA_LOG)"
            fi
            sleep 0.3
        done
        log "Kafka listening on 127.0.0.1:$bport after $((SECONDS - deadline + START_TIMEOUT))s"
    fi
    KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$bport"
}

kafka_stop_private() {
    local pid
    if pid="$(kafka_pid)"; then
        log "stopping Kafka (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + 60))
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                log "Kafka did not stop within 60s; killing pid $pid"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.3
        done
    else
        log "Kafka (private) is not running"
    fi
    rm -f "$KAFKA_PID"
}

# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------
with_lock() {  # serialise concurrent start/stop (several test sessions share one repository)
    mkdir -p "$STATE"
    exec 9>"$STATE/infra.lock"
    if ! flock -w 600 9; then die "another infra.sh holds $STATE/infra.lock for over 10 minutes"; fi
}

cmd_start() {
    with_lock
    local t0=$SECONDS pg_source kafka_source
    if [ -n "${DATABASE_URL:-}" ] && py "$HERE/probe.py" pg "$DATABASE_URL" --timeout 5; then
        pg_source="external"
        log "using external PostgreSQL from DATABASE_URL"
    else
        [ -n "${DATABASE_URL:-}" ] && log "WARNING: DATABASE_URL is set but not reachable; starting a private cluster"
        pg_start_private
        pg_source="private"
    fi
    if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ] && py "$HERE/probe.py" kafka "$KAFKA_BOOTSTRAP_SERVERS" --timeout 10; then
        kafka_source="external"
        log "using external Kafka at $KAFKA_BOOTSTRAP_SERVERS"
    else
        [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ] && log "WARNING: KAFKA_BOOTSTRAP_SERVERS is set but not reachable; starting a private broker"
        kafka_start_private
        kafka_source="private"
    fi
    py "$HERE/create_topics.py" --bootstrap "$KAFKA_BOOTSTRAP_SERVERS" --timeout 60 \
        || die "Kafka at $KAFKA_BOOTSTRAP_SERVERS did not accept the topics (broker log: $KAFKA_LOG)"
    cat >"$ENV_FILE" <<EOF
# written by deploy/local/infra.sh start ($pg_source PostgreSQL, $kafka_source Kafka)
export DATABASE_URL=$DATABASE_URL
export KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS
EOF
    log "ready in $((SECONDS - t0))s ($pg_source PostgreSQL, $kafka_source Kafka; env in $ENV_FILE)"
    echo "DATABASE_URL=$DATABASE_URL"
    echo "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS"
}

cmd_stop() {
    with_lock
    kafka_stop_private
    pg_stop_private
    rm -f "$ENV_FILE"
}

cmd_restart_postgres() {  # $1: --crash for an immediate shutdown (no checkpoint, recovery at start)
    with_lock
    pg_running || die "PostgreSQL (private, $PG_DATA) is not running: nothing to restart"
    local bindir port mode=fast
    [ "${1:-}" = "--crash" ] && mode=immediate
    bindir="$(pg_bindir)" || die "cannot find pg_ctl for $PG_DATA"
    port="$(cat "$PG_DIR/port")"
    log "restarting PostgreSQL on 127.0.0.1:$port (shutdown mode $mode)"
    as_pg "$bindir/pg_ctl" -D "$PG_DATA" -m "$mode" -w -t 60 stop >&2 || die "pg_ctl stop failed (log: $PG_LOG)"
    port_in_use "$port" && die "port $port was taken while PostgreSQL restarted"
    as_pg "$bindir/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$START_TIMEOUT" -o "-p $port" start >&2 9>&- \
        || { tail -n 30 "$PG_LOG" >&2 || true; die "PostgreSQL did not start again (log: $PG_LOG)"; }
}

cmd_restart_kafka() {  # $1: --crash for SIGKILL (log recovery at start) instead of a controlled stop
    with_lock
    local pid bport cport
    pid="$(kafka_pid)" || die "Kafka (private, $KAFKA_DIR) is not running: nothing to restart"
    read -r bport cport <"$KAFKA_DIR/ports"
    if [ "${1:-}" = "--crash" ]; then
        log "killing Kafka (pid $pid, SIGKILL)"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        rm -f "$KAFKA_PID"
    else
        kafka_stop_private
    fi
    if port_in_use "$bport" || port_in_use "$cport"; then
        die "Kafka's ports $bport/$cport were taken while it restarted"
    fi
    kafka_start_private
    [ "$KAFKA_BOOTSTRAP_SERVERS" = "127.0.0.1:$bport" ] || die "Kafka came back on $KAFKA_BOOTSTRAP_SERVERS, not :$bport"
}

cmd_status() {
    local pid rc=0 last=""
    [ -f "$ENV_FILE" ] && last="$(head -n 1 "$ENV_FILE")"
    if pg_running; then
        echo "postgres: private cluster running, pid $(head -n 1 "$PG_DATA/postmaster.pid"), $(pg_url "$(cat "$PG_DIR/port")") (data $PG_DATA)"
    else
        echo "postgres: private cluster not running${DATABASE_URL:+ (DATABASE_URL=$DATABASE_URL is set)}"
        case "$last" in *"external PostgreSQL"*) echo "postgres: last start used an external server" ;; *) rc=3 ;; esac
    fi
    if pid="$(kafka_pid)"; then
        echo "kafka: private broker running, pid $pid, 127.0.0.1:$(cut -d' ' -f1 "$KAFKA_DIR/ports") (log $KAFKA_LOG)"
    else
        echo "kafka: private broker not running${KAFKA_BOOTSTRAP_SERVERS:+ (KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS is set)}"
        case "$last" in *"external Kafka"*) echo "kafka: last start used an external broker" ;; *) rc=3 ;; esac
    fi
    if [ -n "$last" ]; then
        echo "last start: ${last#\# }"
        grep '^export' "$ENV_FILE" | sed 's/^export /  /'
    fi
    return $rc
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    restart-postgres) cmd_restart_postgres "${2:-}" ;;
    restart-kafka) cmd_restart_kafka "${2:-}" ;;
    *) echo "usage: $0 start|stop|status|restart-postgres|restart-kafka [--crash]" >&2; exit 2 ;;
esac
