"""Events for other services, read as CloudEvents by a consumer in another language.

complaintd publishes every event to a JetStream stream (a nats-server of the test's own,
`sync_interval: always`) in the CloudEvents binary content mode: `ce-` headers and the
data's media type as `content-type`. Here nats-py consumes the stream and the CloudEvents
SDK (`cloudevents`) reads each message: every step of a lifecycle arrives once, in order,
with its attributes, and its data decodes as the protobuf message `ce-dataschema` names.

The nats-server: $NATS_SERVER_BIN, else the project's pinned one in .tools/bin
(scripts/install-nats-server).
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import socket
import subprocess
import time

import nats
import pytest
from cloudevents.core.bindings import http as ce_http

from complaints_client import Caller
from test_client import REPO, running_complaintd
from walk import walk

CALLER = Caller("user:pytest", "intake,handler")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nats_server_binary() -> pathlib.Path:
    path = pathlib.Path(
        os.environ.get("NATS_SERVER_BIN", REPO / ".tools" / "bin" / "nats-server")
    )
    if not os.access(path, os.X_OK):
        pytest.fail(f"no nats-server at {path}: run scripts/install-nats-server")
    return path


@pytest.fixture
def nats_url(tmp_path):
    port = free_port()
    config = tmp_path / "nats.conf"
    config.write_text(
        f'listen: "127.0.0.1:{port}"\n'
        f'jetstream {{\n  store_dir: "{tmp_path / "js"}"\n  sync_interval: always\n}}\n'
    )
    process = subprocess.Popen(
        [nats_server_binary(), "-c", config],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("nats-server did not start")
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


async def consume(url: str, subject: str, want: int, deadline: float) -> list:
    """Every message of the stream (ordered consumer) until `want` of them have
    ce-subject `subject`; as (CloudEvent, raw headers)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe("complaints.events.>", ordered_consumer=True)
        events = []
        mine = 0
        while mine < want:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"only {mine} of {want} events of {subject} arrived")
            try:
                msg = await sub.next_msg(timeout=left)
            except nats.errors.TimeoutError:
                continue
            event = ce_http.from_binary_event(
                ce_http.HTTPMessage(headers=dict(msg.headers or {}), body=msg.data)
            )
            events.append((event, msg.headers))
            mine += event.get_subject() == subject
        return events
    finally:
        await nc.close()


def test_a_lifecycle_arrives_as_cloudevents_once_and_in_order(tmp_path, nats_url):
    from complaints.events.v1 import events_pb2

    with running_complaintd(tmp_path, COMPLAINTD_NATS_URL=nats_url) as server:
        final = walk(server.stub, CALLER, out=lambda *_: None)
        events = asyncio.run(
            consume(nats_url, final.name, 6, time.monotonic() + 60)
        )
    ids = [e.get_id() for e, _ in events]
    assert len(ids) == len(set(ids)), "each event once"
    mine = [(e, h) for e, h in events if e.get_subject() == final.name]
    assert [e.get_type() for e, _ in mine] == [
        "complaint.registered",
        "complaint.acknowledged",
        "complaint.assigned",
        "complaint.findings_recorded",
        "complaint.answered",
        "complaint.closed",
    ]
    assert [int(h["Complaints-Version"]) for _, h in mine] == [1, 2, 3, 4, 5, 6]
    for event, headers in mine:
        assert event.get_specversion() == "1.0"
        assert event.get_source() == "urn:complaints:complaintd"
        assert event.get_id() == headers["Nats-Msg-Id"]
        assert event.get_datacontenttype() == "application/protobuf"
        assert event.get_dataschema() == "urn:protobuf:complaints.events.v1.ComplaintEvent"
        assert event.get_time() is not None
        data = event.get_data()
        raw = data if isinstance(data, bytes) else data.encode("utf-8")
        assert events_pb2.ComplaintEvent.FromString(raw).actor == "user:pytest"
        # Personal data stays sealed on the wire.
        assert b"Ada Lovelace" not in raw
