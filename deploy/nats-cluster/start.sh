#!/usr/bin/env bash
# Starts the three-node NATS JetStream cluster of this directory on this host
# (client ports 14222-14224) and waits until it has elected its JetStream leader.
# Stop it with ./stop.sh. Then run complaintd on it:
#   COMPLAINTD_LOG_BACKEND=jetstream \
#   COMPLAINTD_JETSTREAM_URL=nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224 \
#   cargo run --release -p complaintd     # with jetstream_replicas = 3 in a config file
set -euo pipefail
cd "$(dirname "$0")"
# The nats-server: NATS_SERVER_BIN, else the project's pinned one (scripts/install-nats-server),
# else the PATH; 2.10 or later (sync_interval: always).
NATS=${NATS_SERVER_BIN:-}
[ -n "$NATS" ] || { [ -x ../../.tools/bin/nats-server ] && NATS=../../.tools/bin/nats-server; } || true
[ -n "$NATS" ] || NATS=$(command -v nats-server || true)
[ -n "$NATS" ] || { echo "nats-server is missing: run scripts/install-nats-server (or set NATS_SERVER_BIN)" >&2; exit 1; }
version=$("$NATS" --version | sed 's/.*v//')
case "$version" in
    2.[0-9].*|1.*) echo "$NATS is nats-server $version: 2.10 or later is needed (sync_interval: always); run scripts/install-nats-server" >&2; exit 1;;
esac
mkdir -p .nats-cluster
for n in n1 n2 n3; do
    "$NATS" -c "$n.conf" > ".nats-cluster/$n.log" 2>&1 &
    echo $! > ".nats-cluster/$n.pid"
done
for _ in $(seq 1 600); do
    if grep -q "new metadata leader\|JetStream cluster new" .nats-cluster/n*.log 2>/dev/null; then
        echo "cluster ready: nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224"
        exit 0
    fi
    sleep 0.1
done
echo "the cluster did not elect a leader within 60 s; see .nats-cluster/*.log" >&2
exit 1
