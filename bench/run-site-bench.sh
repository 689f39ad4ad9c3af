#!/usr/bin/env bash
# Site benchmark (BENCHMARKS.md, "Site: signed REST requests"): OAuth 1.0a-signed REST requests against
# `authbroker site serve` on SQLite, load from a second process over keep-alive loopback connections.
#
#   bench/run-site-bench.sh                      # build release, 32 connections, 10 s per kind
#   CONNECTIONS=64 DURATION=20 bench/run-site-bench.sh
#   KINDS=get-me bench/run-site-bench.sh
#
# Steps: build release; `authbroker site init` on an empty data dir; `authbroker site serve` in the
# background on 127.0.0.1; `authbroker-load setup` (registers a consumer, runs the three-legged flow over
# HTTP: request token, login form, consent form, token exchange); `authbroker-load run` per kind; stop the
# server. Exits non-zero if any request was answered other than 2xx.
#
# Environment:
#   CONNECTIONS (32)  DURATION seconds (10)  WARMUP seconds (2)  KINDS ("get-me post-json")
#   PORT (18080)  CLIENT_THREADS (1)  SERVER_RUST_LOG (warn: the per-request INFO access log off)
#   NO_BUILD=1 to use the binaries already built  KEEP_DATA=1 to keep the data dir
set -euo pipefail

cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
KINDS=${KINDS:-"get-me post-json"}
PORT=${PORT:-18080}
CLIENT_THREADS=${CLIENT_THREADS:-1}
SERVER_RUST_LOG=${SERVER_RUST_LOG:-warn}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release -p authbroker-cli -p authbroker-bench
fi
SITE="$TARGET_DIR/release/authbroker"
LOAD="$TARGET_DIR/release/authbroker-load"

DATA=$(mktemp -d "${TMPDIR:-/tmp}/authbroker-bench.XXXXXX")
SERVER_PID=
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -z "${KEEP_DATA:-}" ]]; then
        rm -rf "$DATA"
    else
        echo "data dir kept: $DATA" >&2
    fi
}
trap cleanup EXIT

BASE="http://127.0.0.1:$PORT"
DATABASE_URL="sqlite://$DATA/site.db?mode=rwc"
AUTHBROKER_ADMIN_PASSWORD=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
export AUTHBROKER_ADMIN_PASSWORD

echo "== machine: $(nproc) cores, $(uname -sr); load: $(uptime | sed 's/.*load average: //')"
"$SITE" site init --data-dir "$DATA" --home-url "$BASE" --admin-login bench >/dev/null

RUST_LOG="$SERVER_RUST_LOG" "$SITE" site serve --data-dir "$DATA" --home-url "$BASE" \
    --listen "127.0.0.1:$PORT" >"$DATA/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$BASE/wp-json/"; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        cat "$DATA/serve.log" >&2
        echo "the server exited" >&2
        exit 1
    fi
    sleep 0.1
done
curl -fsS -o /dev/null "$BASE/wp-json/"

CREDENTIALS=$("$LOAD" setup --base-url "$BASE" --database-url "$DATABASE_URL" --login bench)
while IFS='=' read -r name value; do
    case "$name" in
        CONSUMER_KEY | CONSUMER_SECRET | TOKEN | TOKEN_SECRET) export "$name=$value" ;;
    esac
done <<<"$CREDENTIALS"

status=0
for kind in $KINDS; do
    echo "== $kind: $CONNECTIONS connections, ${WARMUP}s warm-up, ${DURATION}s measured"
    "$LOAD" run --base-url "$BASE" --kind "$kind" --connections "$CONNECTIONS" \
        --duration "$DURATION" --warmup "$WARMUP" --threads "$CLIENT_THREADS" || status=1
done
if grep -qiE ' (ERROR|WARN) ' "$DATA/serve.log"; then
    echo "== server warnings/errors:" >&2
    grep -iE ' (ERROR|WARN) ' "$DATA/serve.log" | sed 's/^[^ ]* //' | sort | uniq -c | head -20 >&2
fi
exit "$status"
