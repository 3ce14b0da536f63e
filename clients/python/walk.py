"""Drives one complaint from receipt to close against a running complaintd.

    python clients/python/walk.py --server 127.0.0.1:50051

Register, acknowledge, assign, record findings, answer, close; prints the complaint
after each step. On a refused call it prints the code, the message and each
google.rpc.BadRequest field violation, and exits 1. --with-mistake first sends an
answer with a negative refund, to show the INVALID_ARGUMENT path (not retried).
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from complaints_client import Caller, call, connect, decode_error, new_request_id, pb


def registration(**overrides) -> pb.RegisterComplaintRequest:
    """The README's example complaint, with a fresh request_id and person."""
    received = Timestamp()
    received.GetCurrentTime()
    fields = dict(
        request_id=new_request_id(),
        channel=pb.EMAIL,
        complainant=pb.Complainant(
            person_id=f"person-{new_request_id()}",
            name="Ada Lovelace",
            contact="ada@example.org",
        ),
        unit="cards",
        employee="emp-9",
        product="credit card",
        category="fees",
        claim="refund the annual fee",
        facts="charged twice in January",
        receive_time=received,
        regime="UK-FCA-DISP",
        region="GB-ENG",
    )
    fields.update(overrides)
    return pb.RegisterComplaintRequest(**fields)


def gbp(minor_units: int) -> pb.Money:
    return pb.Money(minor_units=minor_units, currency_code="GBP")


def show(step: str, complaint: pb.Complaint, replayed: bool = False) -> None:
    note = "  (replayed)" if replayed else ""
    print(
        f"{step:<10} {complaint.name}  version {complaint.version}  "
        f"{pb.Status.Name(complaint.status)}{note}"
    )


def walk(
    stub, caller: Caller, with_mistake: bool = False, out: Callable = show
) -> pb.Complaint:
    """Runs the walk; raises grpc.RpcError on a refused step."""
    reply = call(stub.RegisterComplaint, registration(), caller)
    complaint = reply.message
    out("register", complaint, reply.replayed)
    name = complaint.name

    def step(label: str, method, request_type, **fields) -> pb.Complaint:
        # One request, built once: every retry of it carries the same request_id.
        request = request_type(name=name, request_id=new_request_id(), **fields)
        reply = call(method, request, caller)
        out(label, reply.message, reply.replayed)
        return reply.message

    step("ack", stub.AcknowledgeComplaint, pb.AcknowledgeComplaintRequest)
    step(
        "assign",
        stub.AssignComplaint,
        pb.AssignComplaintRequest,
        unit="cards",
        handler="emp-3",
    )
    step(
        "findings",
        stub.RecordFindings,
        pb.RecordFindingsRequest,
        findings="a batch job ran twice",
        root_cause=pb.SYSTEM_ERROR,
        evidence=["INC-42"],
    )
    answer = dict(decision=pb.UPHELD, delivery=pb.DELIVERY_LETTER, summary="fee refunded")
    if with_mistake:
        try:
            step(
                "answer",
                stub.AnswerComplaint,
                pb.AnswerComplaintRequest,
                redress=[pb.Redress(kind=pb.REFUND, amount=gbp(-5))],
                **answer,
            )
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            print(f"answer refused (as intended), {decode_error(err)}")
    step(
        "answer",
        stub.AnswerComplaint,
        pb.AnswerComplaintRequest,
        redress=[pb.Redress(kind=pb.REFUND, amount=gbp(3000))],
        **answer,
    )
    return step("close", stub.CloseComplaint, pb.CloseComplaintRequest)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--as", dest="principal", default="user:python-walk")
    parser.add_argument("--roles", default="intake,handler")
    parser.add_argument("--with-mistake", action="store_true")
    args = parser.parse_args()
    channel, stub = connect(args.server)
    with channel:
        try:
            walk(stub, Caller(args.principal, args.roles), args.with_mistake)
        except grpc.RpcError as err:
            print(f"error: {decode_error(err)}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
