"""What an adapter remembers lives for one request: the twin's work is reused by the real run, and
nothing carries over to the next request, whose answer time could tell what another researcher asked."""

from queries.libraries.base import remembered, request_scope


def test_a_value_is_computed_once_per_request_and_again_in_the_next():
    calls = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    with request_scope():
        assert remembered("scale", compute) == 1
        assert remembered("scale", compute) == 1
    with request_scope():
        assert remembered("scale", compute) == 2
    assert len(calls) == 2


def test_outside_a_request_nothing_is_remembered():
    calls = []
    remembered("scale", lambda: calls.append(1))
    remembered("scale", lambda: calls.append(1))
    assert len(calls) == 2
