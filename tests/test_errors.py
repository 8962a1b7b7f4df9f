"""A refusal's status fits gRPC's trailers whatever text it echoes (docs/protocol.md, "A refusal's
message is cut to 1000 bytes of UTF-8 ...")."""

from __future__ import annotations

from coalition_kernel.errors import FailedPrecondition, to_grpc_status

SOFT_LIMIT = 8192  # bytes of metadata past which a gRPC client may drop the trailers


def _trailers_size(status) -> int:  # type: ignore[no-untyped-def]
    # grpc-message is percent-encoded: a non-ASCII byte takes three.
    message = status.details.encode()
    encoded = sum(1 if 0x20 <= b < 0x7F and b != 0x25 else 3 for b in message)
    return encoded + sum(len(k) + len(v) for k, v in status.trailing_metadata)


def test_a_refusal_echoing_long_non_ascii_text_is_cut_by_bytes_and_fits_the_trailers():
    echoed = "ü" * 5000
    status = to_grpc_status(
        FailedPrecondition("POINT_VALUE_MISMATCH", f"priced at {echoed}", a=echoed, b=echoed)
    )
    assert len(status.details.encode()) <= 1000 and status.details.endswith("…")
    assert _trailers_size(status) < SOFT_LIMIT


def test_a_short_refusal_is_sent_whole():
    status = to_grpc_status(FailedPrecondition("QUOTE_EXPIRED", "quote q-1 expired; ask again"))
    assert status.details == "quote q-1 expired; ask again"
