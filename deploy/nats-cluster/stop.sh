#!/usr/bin/env bash
# Stops the local three-node cluster started by ./start.sh (its data stays in .nats-cluster).
cd "$(dirname "$0")"
for pid in .nats-cluster/*.pid; do
    [ -e "$pid" ] && kill "$(cat "$pid")" 2>/dev/null; rm -f "$pid"
done
echo stopped
