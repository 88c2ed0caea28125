"""What every server started with acoustack.grpc_server gives a client, whatever its servicer does:
typed errors as their codes with details a client can receive, bugs as INTERNAL with the traceback
in our log (never UNKNOWN with the exception's text), bytes that do not parse as INVALID_ARGUMENT."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import grpc
import pytest

from acoustack.errors import InvalidArgumentError, bounded, quote, validation_message
from acoustack.grpc_server import rpc_errors, start_server
from acoustack.schema import Deployment
from acoustack.v1 import check_pb2, check_pb2_grpc


class Servicer(check_pb2_grpc.SelfCheckServicer):
    """Does what the request's configuration says: a way to make a servicer misbehave."""

    @rpc_errors
    def Check(self, request, context):
        what = request.program_config_json
        if what == "long error":
            raise InvalidArgumentError("field: " + "€" * 50_000)
        if what == "bug":
            raise KeyError("secret internals")
        return check_pb2.CheckResponse()


class Undecorated(check_pb2_grpc.SelfCheckServicer):
    """No rpc_errors: what escapes it reaches the server's guard."""

    def Check(self, request, context):
        if request.program_config_json == "typed":
            raise InvalidArgumentError("program_config_json: no")
        raise ZeroDivisionError("secret internals")


@pytest.fixture(params=[Servicer, Undecorated])
def server(request):
    servicer = request.param()

    def add(server):
        check_pb2_grpc.add_SelfCheckServicer_to_server(servicer, server)
        return "acoustack.v1.SelfCheck"

    running = start_server([add], address="127.0.0.1:0")
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    yield SimpleNamespace(
        stub=check_pb2_grpc.SelfCheckStub(channel), kind=request.param, channel=channel
    )
    channel.close()
    running.stop(0)


def call(stub, text: str) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        stub.Check(check_pb2.CheckRequest(program_config_json=text), timeout=10)
    return info.value.code(), info.value.details()


def test_a_bug_is_internal_with_its_traceback_logged_not_sent(server, caplog):
    with caplog.at_level(logging.ERROR):
        code, details = call(server.stub, "bug")
    assert (code, details) == (
        grpc.StatusCode.INTERNAL,
        "Check: internal error (see the service log)",
    )
    assert "secret internals" not in details
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in caplog.records)


def test_an_error_too_long_for_a_header_still_reaches_the_client(server):
    if server.kind is Undecorated:  # a typed error escaping a servicer keeps its code
        expected = (grpc.StatusCode.INVALID_ARGUMENT, "program_config_json: no")
        assert call(server.stub, "typed") == expected
        return
    code, details = call(server.stub, "long error")
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("field: €€€")
    assert details.endswith("… (cut: 50007 characters in all)")
    assert len(details.encode()) <= 1500


def test_bytes_that_do_not_parse_never_reach_the_servicer(server):
    raw = server.channel.unary_unary(
        "/acoustack.v1.SelfCheck/Check", request_serializer=None, response_deserializer=None
    )
    with pytest.raises(grpc.RpcError) as info:
        raw(b"\x0a\x03\xff\xfe\xc0", timeout=10)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "request: the bytes are not a valid acoustack.v1.CheckRequest"


def test_quote_keeps_a_short_value_and_cuts_a_long_one_saying_its_length():
    assert quote("nope") == "'nope'"
    assert quote("a\x00b") == "'a\\x00b'"
    assert quote("x" * 20_000) == f"{'x' * 100!r}… (20000 characters)"
    assert quote(b"\x00" * 300, limit=2) == "b'\\x00\\x00'… (300 bytes)"


def test_bounded_cuts_by_bytes_and_never_splits_a_character():
    assert bounded("short") == "short"
    cut = bounded("🦇" * 1000, limit_bytes=100)
    assert len(cut.encode()) <= 100 and cut.endswith("(cut: 1000 characters in all)")
    cut.encode("utf-8")  # whole characters only


def test_a_validation_message_lists_ten_problems_then_counts_the_rest():
    with pytest.raises(ValueError) as info:
        Deployment.model_validate({"name": "", **{f"extra_{i}": i for i in range(15)}})
    message = validation_message(info.value, "")
    assert message.startswith("name: String should have at least 1 character")
    assert message.endswith("; and 6 more problems")
    assert message.count(";") == 10
