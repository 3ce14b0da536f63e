"""The Python client against a real complaintd process (started here, one per test).

The binary: $COMPLAINTD_BIN, else $CARGO_TARGET_DIR/debug/complaintd, else
target/debug/complaintd (build it with `cargo build -p complaintd`).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import subprocess
import time

import grpc
import pytest

from complaints_client import (
    Caller,
    call,
    connect,
    decode_error,
    new_request_id,
    pb,
    wait_until_serving,
)
from walk import registration, walk

REPO = pathlib.Path(__file__).resolve().parents[2]
START_DEADLINE = 60.0  # seconds; a debug build on a busy 2-core machine
CALLER = Caller("user:pytest", "intake,handler")


def complaintd_binary() -> pathlib.Path:
    if os.environ.get("COMPLAINTD_BIN"):
        path = pathlib.Path(os.environ["COMPLAINTD_BIN"])
    else:
        target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        path = target / "debug" / "complaintd"
    if not os.access(path, os.X_OK):
        pytest.fail(f"no complaintd binary at {path}: run `cargo build -p complaintd`")
    return path


def read_ready_addr(log: pathlib.Path, process: subprocess.Popen) -> str:
    """Waits for the JSON log line "complaintd ready" and returns its addr."""
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            try:
                fields = json.loads(line).get("fields", {})
            except json.JSONDecodeError:
                continue
            if fields.get("message") == "complaintd ready":
                return fields["addr"]
        if process.poll() is not None:
            pytest.fail(f"complaintd exited ({process.returncode}):\n{log.read_text()}")
        time.sleep(0.05)
    pytest.fail(f"complaintd not ready after {START_DEADLINE}s:\n{log.read_text()}")


class Server:
    def __init__(self, addr: str, log: pathlib.Path):
        self.addr = addr
        self.log = log
        self.channel, self.stub = connect(addr)


@contextlib.contextmanager
def running_complaintd(tmp_path, **settings):
    """A complaintd process on a free port, with `settings` (COMPLAINTD_* variables)
    beside ours; stopped (SIGTERM, then SIGKILL) when the block ends, also on failure."""
    # Only our settings: none inherited from the caller's shell (a COMPLAINTD_CONFIG...).
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTD_")}
    env.update(
        COMPLAINTD_LISTEN="127.0.0.1:0",
        COMPLAINTD_HTTP_LISTEN="127.0.0.1:0",
        COMPLAINTD_DATA_DIR=str(tmp_path / "data"),
        COMPLAINTD_LOG_FORMAT="json",
        RUST_LOG="info",
        **settings,
    )
    log = tmp_path / "complaintd.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [complaintd_binary()],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = None
    try:
        running = Server(read_ready_addr(log, process), log)
        wait_until_serving(running.channel, START_DEADLINE)
        yield running
    finally:
        if running is not None:
            running.channel.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def server(tmp_path):
    with running_complaintd(tmp_path) as running:
        yield running


def test_walk_from_receipt_to_close(server):
    steps = []
    final = walk(server.stub, CALLER, out=lambda label, c, replayed: steps.append(label))
    assert steps == ["register", "ack", "assign", "findings", "answer", "close"]
    assert final.status == pb.CLOSED
    assert final.version == 6  # one event per step
    stored = call(server.stub.GetComplaint, pb.GetComplaintRequest(name=final.name), CALLER)
    assert stored.message.status == pb.CLOSED
    assert stored.message.version == 6
    assert stored.message.decision == pb.UPHELD
    assert [(r.kind, r.amount.minor_units) for r in stored.message.redress] == [
        (pb.REFUND, 3000)
    ]


class Counting:
    """Wraps a stub method to count the attempts `call` makes."""

    def __init__(self, method):
        self.method, self.requests = method, []

    def with_call(self, request, **kwargs):
        self.requests.append(request)
        return self.method.with_call(request, **kwargs)


@pytest.mark.parametrize(
    "changes, fields",
    [
        ({"channel": pb.CHANNEL_UNSPECIFIED, "receive_time": None}, {"channel", "receive_time"}),
        ({"claim": "", "regime": "XX-NOWHERE"}, {"claim", "regime"}),
    ],
)
def test_bad_registration_is_invalid_argument_naming_the_fields(server, changes, fields):
    request = registration()
    for field, value in changes.items():
        if value is None:
            request.ClearField(field)
        else:
            setattr(request, field, value)
    method = Counting(server.stub.RegisterComplaint)
    with pytest.raises(grpc.RpcError) as caught:
        call(method, request, CALLER)
    report = decode_error(caught.value)
    assert report.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in report.violations} == fields
    assert all(description for _, description in report.violations)
    assert report.other_details == []
    assert len(method.requests) == 1, "INVALID_ARGUMENT must not be retried"


def test_retry_with_the_same_request_id_returns_the_same_complaint(server):
    request = registration()
    first = call(server.stub.RegisterComplaint, request, CALLER)
    again = call(server.stub.RegisterComplaint, request, CALLER)
    assert not first.replayed
    assert again.replayed
    assert again.message == first.message
    assert again.message.version == 1

    ack = pb.AcknowledgeComplaintRequest(name=first.message.name, request_id=new_request_id())
    acked = call(server.stub.AcknowledgeComplaint, ack, CALLER)
    acked_again = call(server.stub.AcknowledgeComplaint, ack, CALLER)
    assert acked_again.replayed
    assert acked_again.message == acked.message
    stored = call(server.stub.GetComplaint, pb.GetComplaintRequest(name=first.message.name), CALLER)
    assert stored.message.version == 2, "a replayed step records nothing"


def test_aborted_is_retried_with_the_same_request(server):
    registered = call(server.stub.RegisterComplaint, registration(), CALLER).message
    # A stale expected_version: ABORTED, and retrying the same request cannot fix it,
    # so the attempts run out and the caller gets ABORTED (it must read again).
    request = pb.AcknowledgeComplaintRequest(
        name=registered.name, request_id=new_request_id(), expected_version=7
    )
    method = Counting(server.stub.AcknowledgeComplaint)
    with pytest.raises(grpc.RpcError) as caught:
        call(method, request, CALLER, attempts=3, backoff=0.01)
    assert caught.value.code() == grpc.StatusCode.ABORTED
    assert len(method.requests) == 3
    assert all(r is request for r in method.requests)
    assert decode_error(caught.value).violations == []


class FakeError(grpc.RpcError):
    def __init__(self, code):
        self._code = code

    def code(self):
        return self._code

    def details(self):
        return "fake"


class Flaky:
    """Fails with the given codes, then answers."""

    def __init__(self, *codes):
        self.codes, self.requests = list(codes), []

    def with_call(self, request, **kwargs):
        self.requests.append(request)
        if self.codes:
            raise FakeError(self.codes.pop(0))
        return "answer", _NoMetadata()


class _NoMetadata:
    def initial_metadata(self):
        return ()


def test_aborted_then_success_resends_the_same_request_id():
    request = pb.CloseComplaintRequest(name="complaints/x", request_id=new_request_id())
    method = Flaky(grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE)
    reply = call(method, request, CALLER, backoff=0.001)
    assert reply.message == "answer" and reply.attempts == 3
    assert {r.request_id for r in method.requests} == {request.request_id}


def test_a_return_from_python_is_the_servers_csv_with_its_provenance(tmp_path):
    """ReportService from another language: the measures of a period around today, their
    CSV readable with the csv module, and an unmapped name refusing the ASIC file."""
    import csv
    import datetime

    from complaints.reports.v1 import reports_pb2, reports_pb2_grpc

    mapping = REPO / "deploy" / "reports" / "mapping.toml"
    with running_complaintd(tmp_path, COMPLAINTD_REPORTS_MAPPING=str(mapping)) as server:
        walk(server.stub, CALLER, out=lambda *_: None)
        today = datetime.datetime.now(datetime.timezone.utc).date()
        period = f"{today - datetime.timedelta(days=1)}..{today + datetime.timedelta(days=1)}"
        reports = reports_pb2_grpc.ReportServiceStub(server.channel)
        officer = Caller("user:officer", "compliance")
        report = reports.GetReport(
            reports_pb2.GetReportRequest(
                kind="measures", period=period, time_zone="UTC", by="handler"
            ),
            metadata=officer.metadata(),
            timeout=10,
        )
        assert report.provenance.kind == "measures"
        assert not report.provenance.period_ended
        assert report.provenance.as_of_position == report.provenance.log_head
        measures = report.sections[0]
        lines = [line for line in measures.csv.splitlines() if not line.startswith("#")]
        rows = {row["handler"]: row for row in csv.DictReader(lines)}
        # Received, answered (upheld) and closed by emp-3 within the period: valid.
        emp3 = rows["emp-3"]
        assert (emp3["received"], emp3["handled"], emp3["decided"], emp3["valid"]) == (
            "1",
            "1",
            "1",
            "1",
        )
        assert emp3["valid_rate_percent"] == "100.0"
        document = json.loads(report.json)
        assert document["provenance"]["as_of_position"] == report.provenance.as_of_position

        # A complaint under ASIC about a product the mapping lacks: refused, listed.
        call(
            server.stub.RegisterComplaint,
            registration(regime="AU-ASIC-RG271", region="AU", product="widget"),
            CALLER,
        )
        with pytest.raises(grpc.RpcError) as refused:
            reports.GetReport(
                reports_pb2.GetReportRequest(kind="asic-idr", period=period, time_zone="UTC"),
                metadata=officer.metadata(),
                timeout=10,
            )
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "not mapped" in refused.value.details()
