#!/usr/bin/env bash
# Broker benchmark (BENCHMARKS.md, "Broker: held connections and brokered connections per second"), on
# loopback only, everything bounded in time and count.
#
#   bench/run-broker-bench.sh                         # build release, (a) 10,000 held, (b) 16 × 10 s
#   HELD=0,1000,5000,10000 CONCURRENCY=16 DURATION=10 bench/run-broker-bench.sh
#   PARTS=a bench/run-broker-bench.sh                 # only the held connections
#
# (a) Held R1 connections: `authbroker broker serve` on plain HTTP (127.0.0.1), a fake site
#     (`authbroker-broker-load fake-site`) whose connection endpoint answers 202 and never verifies, and
#     `authbroker-broker-load hold`, which opens the connections (one socket each, each R1 freshly signed,
#     apps taken in turn), keeps them open and samples the broker's VmRSS/VmHWM at each count.
# (b) Brokered connections per second: the same broker database served over HTTPS (certificate from a test
#     CA made here with openssl), `authbroker site serve` trusting it (`known_brokers`, `extra_root_certs`),
#     and `authbroker-broker-load flows`: complete R1 flows (R2, R4, the site's R5, credentials in the R1
#     body) with CONCURRENCY in flight for DURATION seconds.
#
# Apps are registered through the broker itself: `authbroker broker init` (first administrator), portal
# login, an API token, then `POST /api/v1/apps` (`authbroker-broker-load setup`).
#
# Environment:
#   HELD ("0,1000,5000,10000")  APPS (10)  CONCURRENCY (16)  DURATION seconds (10)  WARMUP seconds (2)
#   PARTS ("a b")  BROKER_PORT (18443)  BROKER_TLS_PORT (18444)  SITE_PORT (18480)  FAKE_PORT (18481)
#   NO_BUILD=1 to use the binaries already built  KEEP_DATA=1 to keep the data dir
set -euo pipefail

cd "$(dirname "$0")/.."
HELD=${HELD:-0,1000,5000,10000}
APPS=${APPS:-10}
CONCURRENCY=${CONCURRENCY:-16}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
PARTS=${PARTS:-"a b"}
BROKER_PORT=${BROKER_PORT:-18443}
BROKER_TLS_PORT=${BROKER_TLS_PORT:-18444}
SITE_PORT=${SITE_PORT:-18480}
FAKE_PORT=${FAKE_PORT:-18481}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
MAX_HELD=$(($(tr ',' '\n' <<<"$HELD" | sort -n | tail -1) + 2000))

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release -p authbroker-cli -p authbroker-bench
fi
BIN="$TARGET_DIR/release/authbroker"
LOAD="$TARGET_DIR/release/authbroker-broker-load"

# Every held R1 is one socket in the broker and one in the load process: raise the soft limit to the hard
# one (raising the hard limit needs CAP_SYS_RESOURCE, which containers often lack).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < MAX_HELD + 1000)); then
    echo "open-file limit $(ulimit -n) is too low for $MAX_HELD held connections" >&2
    exit 1
fi

DATA=$(mktemp -d "${TMPDIR:-/tmp}/authbroker-broker-bench.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # Bounded: a process that ignores SIGTERM for 15 s is killed.
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -z "${KEEP_DATA:-}" ]]; then
        rm -rf "$DATA"
    else
        echo "data dir kept: $DATA" >&2
    fi
}
trap cleanup EXIT
stop() { # stop PID: SIGTERM, wait (bounded), forget it
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local kept=()
    for p in "${PIDS[@]}"; do [[ "$p" == "$pid" ]] || kept+=("$p"); done
    PIDS=("${kept[@]}")
}
wait_http() { # wait_http URL PID LOG [curl options]: until URL answers, at most 10 s
    local url=$1 pid=$2 log=$3
    shift 3
    for _ in $(seq 1 100); do
        if curl -fsS -o /dev/null "$@" "$url" 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$log" >&2
            echo "process $pid exited" >&2
            exit 1
        fi
        sleep 0.1
    done
    cat "$log" >&2
    echo "$url did not answer within 10 s" >&2
    exit 1
}
rss() { awk '/^VmRSS|^VmHWM/ {printf "%s %s kB  ", $1, $2}' "/proc/$1/status"; echo; }

echo "== $(date -u '+%F %T') UTC; machine: $(nproc) cores, $(uname -sr); load: $(uptime | sed 's/.*load average: //')"
echo "== open-file limit $(ulimit -n)"

ADMIN_EMAIL=bench@broker.example
AUTHBROKER_ADMIN_PASSWORD=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
export AUTHBROKER_ADMIN_PASSWORD
mkdir -p "$DATA/broker" "$DATA/site"
export AUTHBROKER_DATA_DIR="$DATA/broker"
export AUTHBROKER_ALLOW_LOOPBACK_TARGETS=true
export AUTHBROKER_MAX_HELD_CONNECTIONS=$MAX_HELD
export AUTHBROKER_CONNECT_TIMEOUT_SECS=900
export AUTHBROKER_RATE_LIMIT_PER_APP=0 AUTHBROKER_RATE_LIMIT_PER_SERVER=0 AUTHBROKER_RATE_LIMIT_PER_IP=0
# The per-connection INFO line off: the benchmark measures the broker, not its log.
export RUST_LOG=${SERVER_RUST_LOG:-warn}

HTTP_BASE="http://127.0.0.1:$BROKER_PORT"
"$BIN" broker init --broker-id "$HTTP_BASE/" --admin-email "$ADMIN_EMAIL" >/dev/null

# ---- (a) held connections ----
"$BIN" broker serve --broker-id "$HTTP_BASE/" --listen "127.0.0.1:$BROKER_PORT" \
    >"$DATA/broker-http.log" 2>&1 &
BROKER_PID=$!
PIDS+=("$BROKER_PID")
wait_http "$HTTP_BASE/login" "$BROKER_PID" "$DATA/broker-http.log"
"$LOAD" setup --broker "$HTTP_BASE" --email "$ADMIN_EMAIL" --apps "$APPS" >"$DATA/apps.txt"
echo "== registered $(wc -l <"$DATA/apps.txt") apps through the JSON API"

if [[ " $PARTS " == *" a "* ]]; then
    "$LOAD" fake-site --listen "127.0.0.1:$FAKE_PORT" >"$DATA/fake-site.log" 2>&1 &
    FAKE_PID=$!
    PIDS+=("$FAKE_PID")
    wait_http "http://127.0.0.1:$FAKE_PORT/wp-json/" "$FAKE_PID" "$DATA/fake-site.log"
    echo "== (a) held R1 connections; broker pid $BROKER_PID; idle broker: $(rss "$BROKER_PID")"
    echo "   load before: $(uptime | sed 's/.*load average: //')"
    timeout 600 "$LOAD" hold --broker "$HTTP_BASE" --server-url "http://127.0.0.1:$FAKE_PORT/" \
        --apps "$DATA/apps.txt" --pid "$BROKER_PID" --checkpoints "$HELD" --limit 500
    echo "   load after: $(uptime | sed 's/.*load average: //')"
    echo "   fake site: $(tail -1 "$DATA/fake-site.log")"
    stop "$FAKE_PID"
fi
stop "$BROKER_PID"

# ---- (b) brokered connections per second with our site ----
if [[ " $PARTS " == *" b "* ]]; then
    TLS_BASE="https://127.0.0.1:$BROKER_TLS_PORT"
    SITE_BASE="http://127.0.0.1:$SITE_PORT"
    (
        cd "$DATA"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj "/CN=authbroker bench CA" -keyout ca.key -out ca.pem \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
            2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
            -keyout broker.key -out broker.csr 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >leaf.ext
        openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile leaf.ext -out broker.pem 2>/dev/null
    )
    "$BIN" broker serve --broker-id "$TLS_BASE/" --listen "127.0.0.1:$BROKER_TLS_PORT" \
        --tls-cert "$DATA/broker.pem" --tls-key "$DATA/broker.key" >"$DATA/broker-tls.log" 2>&1 &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
    wait_http "$TLS_BASE/login" "$BROKER_PID" "$DATA/broker-tls.log" --cacert "$DATA/ca.pem"

    cat >"$DATA/site.toml" <<EOF
home_url = "$SITE_BASE"
data_dir = "$DATA/site"
listen = "127.0.0.1:$SITE_PORT"
extra_root_certs = ["$DATA/ca.pem"]

[[known_brokers]]
id = "$TLS_BASE/"
verification_url = "$TLS_BASE/broker/confirm/"
EOF
    (
        unset AUTHBROKER_DATA_DIR
        "$BIN" site init --config "$DATA/site.toml" --admin-login bench >/dev/null
    )
    (
        unset AUTHBROKER_DATA_DIR
        exec "$BIN" site serve --config "$DATA/site.toml"
    ) >"$DATA/site.log" 2>&1 &
    SITE_PID=$!
    PIDS+=("$SITE_PID")
    wait_http "$SITE_BASE/wp-json/" "$SITE_PID" "$DATA/site.log"

    echo "== (b) complete R1 flows against our site: concurrency $CONCURRENCY, ${WARMUP}s warm-up, ${DURATION}s measured"
    echo "   load before: $(uptime | sed 's/.*load average: //')"
    status=0
    timeout $((DURATION + WARMUP + 120)) "$LOAD" flows --broker "$TLS_BASE" --ca "$DATA/ca.pem" \
        --server-url "$SITE_BASE/" --apps "$DATA/apps.txt" --concurrency "$CONCURRENCY" \
        --duration "$DURATION" --warmup "$WARMUP" || status=1
    echo "   load after: $(uptime | sed 's/.*load average: //')"
    echo "   broker after the flows: $(rss "$BROKER_PID")"
    echo "   site after the flows: $(rss "$SITE_PID")"
    for log in broker-tls site; do
        if grep -qE ' (ERROR|WARN) ' "$DATA/$log.log"; then
            echo "== $log warnings/errors:" >&2
            grep -E ' (ERROR|WARN) ' "$DATA/$log.log" | sed 's/^[^ ]* //' | sort | uniq -c | head -10 >&2
        fi
    done
    exit "$status"
fi
