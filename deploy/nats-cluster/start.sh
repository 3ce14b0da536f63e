#!/usr/bin/env bash
# Starts the three-node NATS JetStream cluster of this directory on this host
# (client ports 14222-14224) and waits until it has elected its JetStream leader.
# Stop it with ./stop.sh. Then run complaintd on it:
#   COMPLAINTD_LOG_BACKEND=jetstream \
#   COMPLAINTD_JETSTREAM_URL=nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224 \
#   cargo run --release -p complaintd     # with jetstream_replicas = 3 in a config file
set -euo pipefail
cd "$(dirname "$0")"
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || {
    echo "nats-server is missing: apt-get install -y nats-server" >&2; exit 1; }
NATS=$(command -v nats-server || echo /usr/sbin/nats-server)
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
