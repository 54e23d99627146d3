"""The event store with ESKIT_HTTP_LOOPS=0: a thread per connection instead
of event loops (README, "No thread waits for a commit"). An append then waits
for its group on its connection's thread, and MHD reads the SSE stream on
that thread. Tests of the other modules, run again on such a server."""
import pytest

import test_event_store_api as api
import test_event_store_log_guarantee as guarantee
import test_event_store_malformed as malformed
import test_event_store_wakeups as wakeups


@pytest.fixture
def thread_store(backend, services):
    s = services("event-store", {"ESKIT_DATABASE_URL": backend(), "ESKIT_HTTP_LOOPS": "0"})
    assert s.wait_ready(), s.log()
    return s


# Each test expects a fresh store: one test here per test reused.
REUSED = [
    api.test_append_and_read_stream,
    api.test_batch_is_atomic,
    api.test_concurrent_same_version_exactly_one_wins,
    api.test_snapshots,
    api.test_health_ready_and_unknown_paths,
    guarantee.test_log_guarantee_concurrent_writers,
    wakeups.test_long_poll_wakes_within_milliseconds,
    wakeups.test_sse_backlog_then_live,
    wakeups.test_sse_head_sends_the_headers_alone,
    malformed.test_malformed_requests_catalogue,
]


@pytest.mark.parametrize("test", REUSED, ids=[t.__name__ for t in REUSED])
def test_on_a_thread_per_connection(thread_store, test):
    test(thread_store)
