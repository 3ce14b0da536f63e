"""A small Python client for complaintd: calls with retries, and errors decoded.

What a real caller needs besides the generated stubs:
- every call carries who is calling (dev mode: the x-principal and x-roles headers);
- a step is retried with the *same* request (so the same request_id) on ABORTED and
  UNAVAILABLE: the server records a request_id once, so a retry of a step that did go
  through returns the first result (with the `x-replayed: true` header) and records
  nothing; INVALID_ARGUMENT and every other code are never retried;
- errors carry a google.rpc.Status in the `grpc-status-details-bin` trailer; for
  INVALID_ARGUMENT it holds a google.rpc.BadRequest naming each bad field.

Run `python clients/python/generate.py` first: the stubs are generated into gen/.
"""

from __future__ import annotations

import dataclasses
import pathlib
import random
import sys
import time
import uuid
from typing import Any, Callable

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

_GEN = pathlib.Path(__file__).resolve().parent / "gen"
if not (_GEN / "complaints" / "v1" / "complaints_pb2.py").exists():
    raise ImportError(
        f"no generated stubs in {_GEN}: run `python clients/python/generate.py` first"
    )
if str(_GEN) not in sys.path:
    sys.path.insert(0, str(_GEN))

from complaints.v1 import complaints_pb2 as pb  # noqa: E402
from complaints.v1 import complaints_pb2_grpc as pb_grpc  # noqa: E402

RETRYABLE = frozenset({grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE})


def new_request_id() -> str:
    return str(uuid.uuid4())


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who is calling, in development mode (the server trusts these headers)."""

    principal: str = "user:python-client"
    roles: str = "intake,handler"

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-principal", self.principal), ("x-roles", self.roles))


@dataclasses.dataclass(frozen=True)
class Reply:
    message: Any
    # True when the server answered from an earlier call with the same request_id.
    replayed: bool
    attempts: int


def call(
    method: Callable,
    request: Any,
    caller: Caller,
    *,
    attempts: int = 5,
    timeout: float = 10.0,
    backoff: float = 0.05,
) -> Reply:
    """Calls a unary method, retrying ABORTED and UNAVAILABLE with the same request.

    Raises the last grpc.RpcError when a code is not retryable (INVALID_ARGUMENT,
    FAILED_PRECONDITION, ...) or the attempts run out.
    """
    for attempt in range(1, attempts + 1):
        try:
            message, rpc = method.with_call(
                request, metadata=caller.metadata(), timeout=timeout
            )
        except grpc.RpcError as err:
            if err.code() not in RETRYABLE or attempt == attempts:
                raise
            # Exponential backoff with jitter, so contending callers spread out.
            time.sleep(backoff * 2 ** (attempt - 1) * (0.5 + random.random()))
            continue
        replayed = any(
            k == "x-replayed" and v == "true" for k, v in rpc.initial_metadata() or ()
        )
        return Reply(message, replayed, attempt)
    raise AssertionError("unreachable")


@dataclasses.dataclass(frozen=True)
class ErrorReport:
    code: grpc.StatusCode
    message: str
    # (field, description) of each google.rpc.BadRequest field violation.
    violations: list[tuple[str, str]]
    # Type URLs of any other details (none are expected today).
    other_details: list[str]

    def __str__(self) -> str:
        lines = [f"{self.code.name}: {self.message}"]
        lines += [f"  {field}: {description}" for field, description in self.violations]
        lines += [f"  (detail {t})" for t in self.other_details]
        return "\n".join(lines)


def decode_error(err: grpc.RpcError) -> ErrorReport:
    """The code, message and details of a failed call, from `grpc-status-details-bin`."""
    violations: list[tuple[str, str]] = []
    other: list[str] = []
    try:
        status = rpc_status.from_call(err)
    except ValueError as e:  # the trailer's code or message disagree with the call's
        other.append(f"unreadable status details: {e}")
        status = None
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations += [(v.field, v.description) for v in bad.field_violations]
            else:
                other.append(detail.type_url)
    return ErrorReport(err.code(), err.details() or "", violations, other)


def connect(server: str) -> tuple[grpc.Channel, pb_grpc.ComplaintServiceStub]:
    channel = grpc.insecure_channel(server)
    return channel, pb_grpc.ComplaintServiceStub(channel)


def wait_until_serving(channel: grpc.Channel, deadline_seconds: float = 30.0) -> None:
    """Polls grpc.health.v1 until complaints.v1.ComplaintService is SERVING."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service="complaints.v1.ComplaintService")
    deadline = time.monotonic() + deadline_seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            reply = health.Check(request, timeout=1.0)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
            last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as err:
            last = err.code()
        time.sleep(0.05)
    raise TimeoutError(f"not SERVING after {deadline_seconds}s (last: {last})")
