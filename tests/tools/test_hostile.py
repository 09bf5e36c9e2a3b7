"""tools.hostile, the measuring client of issue 20: its counts, never its timings."""

import asyncio

import pytest

from tools import hostile

BURST = 120


@pytest.mark.live
def test_every_503_of_a_burst_past_a_short_queue_is_in_metrics() -> None:
    """One request at a time and one waiting: most of a burst is refused, and all of it counted."""
    settings = {"TITANIC_LIMIT_CONCURRENCY": "1", "TITANIC_QUEUE_LIMIT": "1"}
    with hostile.serve(settings) as (server, port):
        ok, refused, counted, reasons = asyncio.run(hostile.overflow(server.url, port, BURST))
    assert ok + refused == BURST
    assert ok >= 1
    assert refused >= 1
    assert counted == refused
    assert reasons == {
        "overload": refused,
        "header_timeout": 0,
        "body_timeout": 0,
        "too_large": 0,
        "invalid_http": 0,
        "send_timeout": 0,
    }
