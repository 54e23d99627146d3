"""A catalogue of malformed requests to the event store (SPEC §2, §3).

Every case is a raw HTTP request and the 4xx answer SPEC §2 demands: the right
status, the error body {"error": {"code", "message", "details"}} with the code
that goes with the status, for 400s a message naming the field, for 401 a
`WWW-Authenticate: Bearer` header and for 405 an `Allow` header. A request that
fails changes nothing: after the whole catalogue the log head has not moved,
and the service still answers /healthz and a valid append.

The catalogue runs in one test per back end and reports every failing case at
once rather than stopping at the first.
"""
import http.client

from catalogue import CODES, Case, check, j, q, run_cases, send, with_, without

# --------------------------------------------------------------------------
# building blocks (the generic ones are in catalogue.py)

_EMPTY = object()


def ev(oid, etype="User.Created", payload=_EMPTY, version=None, **extra):
    """A valid event (as a dict) for stream `oid`."""
    e = {"originator": {"id": oid}, "event_type": etype,
         "payload": {"k": "v"} if payload is _EMPTY else payload}
    if version is not None:
        e["originator"]["version"] = version
    e.update(extra)
    return e


def head_id(client):
    r = client.get("/v1/logs", params={"from_id": 1, "size": 1})
    assert r.status == 200, r
    return r.json["head_id"]


# --------------------------------------------------------------------------
# the catalogue (run against a store holding stream "seed" at version 1 with a
# snapshot at version 1)

E = "/v1/events"
GOOD = ev("m-good")
ID129 = "a" * 129
ET201 = "A" * 195 + ".Event"                      # 201 characters
assert len(ET201) == 201
DEEP_ARRAY = b"[" * 10000 + b"]" * 10000
DEEP_OBJECT = b'{"a":' * 10000 + b"1" + b"}" * 10000


def nested(levels):
    """A JSON array nested `levels` deep."""
    return b"[" * levels + b"]" * levels


def raw_event(oid, version_literal=None, payload_literal=b'{"k":"v"}'):
    """An event as bytes, with literal JSON text for the id (str or raw
    bytes), the version and the payload."""
    oid = oid if isinstance(oid, bytes) else oid.encode()
    orig = b'{"id":"%s"%s}' % (oid, b',"version":' + version_literal
                               if version_literal is not None else b"")
    return b'{"originator":%s,"event_type":"User.Created","payload":%s}' % (orig,
                                                                          payload_literal)


CASES = [
    # --- not JSON / not the right JSON
    Case("bad_json", "POST", E, b"{not json}", msg="JSON"),
    Case("truncated_json", "POST", E, j(GOOD)[:-7], msg="JSON"),
    Case("truncated_after_key", "POST", E, b'{"originator":', msg="JSON"),
    Case("trailing_garbage", "POST", E, j(GOOD) + b" x", msg="JSON"),
    Case("two_documents", "POST", E, j(GOOD) + j(GOOD), msg="JSON"),
    Case("single_quotes", "POST", E, b"{'originator': {'id': 'x'}}", msg="JSON"),
    Case("empty_body", "POST", E, b"", msg="body"),
    Case("no_body", "POST", E, None, msg="body"),
    Case("whitespace_body", "POST", E, b"  \r\n\t ", msg="body"),
    Case("top_level_array", "POST", E, b"[]", msg="body"),
    Case("top_level_string", "POST", E, b'"User.Created"', msg="body"),
    Case("top_level_number", "POST", E, b"42", msg="body"),
    Case("top_level_null", "POST", E, b"null", msg="body"),
    Case("top_level_true", "POST", E, b"true", msg="body"),
    # --- missing required fields
    Case("missing_originator", "POST", E, without(ev("m1"), "originator"), msg="originator"),
    Case("originator_null", "POST", E, with_(ev("m1"), ("originator",), None),
         msg="originator"),
    Case("originator_string", "POST", E, with_(ev("m1"), ("originator",), "m1"),
         msg="originator"),
    Case("originator_array", "POST", E, with_(ev("m1"), ("originator",), ["m1"]),
         msg="originator"),
    Case("missing_originator_id", "POST", E, without(ev("m1"), "originator", "id"),
         msg="originator.id"),
    Case("missing_event_type", "POST", E, without(ev("m1"), "event_type"), msg="event_type"),
    Case("missing_payload", "POST", E, without(ev("m1"), "payload"), msg="payload"),
    Case("empty_object", "POST", E, b"{}", msg="originator"),
    # --- wrong JSON types
    Case("version_string", "POST", E, ev("m2", version="1"), msg="originator.version"),
    Case("version_real", "POST", E, ev("m2", version=1.5), msg="originator.version"),
    Case("version_true", "POST", E, ev("m2", version=True), msg="originator.version"),
    Case("version_array", "POST", E, ev("m2", version=[1]), msg="originator.version"),
    Case("version_object", "POST", E, ev("m2", version={"v": 1}), msg="originator.version"),
    Case("id_number", "POST", E, with_(ev("m2"), ("originator", "id"), 42),
         msg="originator.id"),
    Case("id_true", "POST", E, with_(ev("m2"), ("originator", "id"), True),
         msg="originator.id"),
    Case("event_type_number", "POST", E, ev("m2", etype=7), msg="event_type"),
    Case("event_type_object", "POST", E, ev("m2", etype={"t": "User.Created"}),
         msg="event_type"),
    Case("occurred_on_number", "POST", E, ev("m2", occurred_on=1700000000),
         msg="occurred_on"),
    Case("occurred_on_object", "POST", E, ev("m2", occurred_on={}), msg="occurred_on"),
    # --- out-of-range numbers
    Case("version_zero", "POST", E, ev("m3", version=0), msg="originator.version"),
    Case("version_negative", "POST", E, ev("m3", version=-1), msg="originator.version"),
    Case("version_int64_min", "POST", E, ev("m3", version=-9223372036854775808),
         msg="originator.version"),
    Case("version_beyond_int64", "POST", E, raw_event("m3", b"9223372036854775808"),
         msg="originator.version"),
    Case("version_below_int64", "POST", E, raw_event("m3", b"-9223372036854775809"),
         msg="originator.version"),
    Case("version_huge_integer", "POST", E, raw_event("m3", b"1" + b"0" * 40),
         msg="originator.version"),
    Case("version_big_real", "POST", E, raw_event("m3", b"1e300"), msg="originator.version"),
    Case("version_overflowing_real", "POST", E, raw_event("m3", b"1e400"),
         msg="originator.version"),
    # a payload has no documented range, but integers beyond int64 are refused
    Case("payload_beyond_int64", "POST", E,
         raw_event("m3", payload_literal=b'{"n":9223372036854775808}')),
    Case("payload_below_int64", "POST", E,
         raw_event("m3", payload_literal=b'[-9223372036854775809]')),
    # --- invalid ids
    Case("id_empty", "POST", E, ev(""), msg="originator.id"),
    Case("id_129_chars", "POST", E, ev(ID129), msg="originator.id"),
    Case("id_space", "POST", E, ev("a b"), msg="originator.id"),
    Case("id_hash", "POST", E, ev("a#b"), msg="originator.id"),
    Case("id_slash", "POST", E, ev("a/b"), msg="originator.id"),
    Case("id_percent", "POST", E, ev("a%20b"), msg="originator.id"),
    Case("id_unicode", "POST", E, ev("caf\u00e9"), msg="originator.id"),
    Case("id_newline", "POST", E, ev("a\nb"), msg="originator.id"),
    # --- invalid event types
    Case("event_type_empty", "POST", E, ev("m4", etype=""), msg="event_type"),
    Case("event_type_no_dot", "POST", E, ev("m4", etype="UserCreated"), msg="event_type"),
    Case("event_type_leading_dot", "POST", E, ev("m4", etype=".User.Created"),
         msg="event_type"),
    Case("event_type_double_dot", "POST", E, ev("m4", etype="User..Created"),
         msg="event_type"),
    Case("event_type_trailing_dot", "POST", E, ev("m4", etype="User.Created."),
         msg="event_type"),
    Case("event_type_space", "POST", E, ev("m4", etype="User.Cre ated"), msg="event_type"),
    Case("event_type_bang", "POST", E, ev("m4", etype="User.Created!"), msg="event_type"),
    Case("event_type_colon", "POST", E, ev("m4", etype="User:Created"), msg="event_type"),
    Case("event_type_unicode", "POST", E, ev("m4", etype="User.Cr\u00e9\u00e9"),
         msg="event_type"),
    Case("event_type_201_chars", "POST", E, ev("m4", etype=ET201), msg="event_type"),
    # --- invalid occurred_on
    Case("occurred_on_words", "POST", E, ev("m5", occurred_on="yesterday"),
         msg="occurred_on"),
    Case("occurred_on_empty", "POST", E, ev("m5", occurred_on=""), msg="occurred_on"),
    Case("occurred_on_date_only", "POST", E, ev("m5", occurred_on="2026-11-22"),
         msg="occurred_on"),
    Case("occurred_on_no_offset", "POST", E, ev("m5", occurred_on="2026-11-22T14:33:00"),
         msg="occurred_on"),
    Case("occurred_on_month_13", "POST", E, ev("m5", occurred_on="2026-13-01T00:00:00Z"),
         msg="occurred_on"),
    Case("occurred_on_feb_29_2023", "POST", E,
         ev("m5", occurred_on="2023-02-29T00:00:00Z"), msg="occurred_on"),
    Case("occurred_on_hour_25", "POST", E, ev("m5", occurred_on="2026-11-22T25:00:00Z"),
         msg="occurred_on"),
    Case("occurred_on_unix_string", "POST", E, ev("m5", occurred_on="1700000000"),
         msg="occurred_on"),
    # --- event ids, metadata, the reserved event name Erased
    Case("event_id_not_uuid", "POST", E, with_(ev("m9"), ("event_id",), "not-a-uuid"),
         msg="event_id"),
    Case("event_id_no_dashes", "POST", E,
         with_(ev("m9"), ("event_id",), "0b7d3c1e4f2a4c8e9b1d5e6f7a8b9c0d"), msg="event_id"),
    Case("event_id_braces", "POST", E,
         with_(ev("m9"), ("event_id",), "{0b7d3c1e-4f2a-4c8e-9b1d-5e6f7a8b9c0d}"),
         msg="event_id"),
    Case("event_id_too_long", "POST", E,
         with_(ev("m9"), ("event_id",), "0b7d3c1e-4f2a-4c8e-9b1d-5e6f7a8b9c0d0"),
         msg="event_id"),
    Case("event_id_not_hex", "POST", E,
         with_(ev("m9"), ("event_id",), "0b7d3c1e-4f2a-4c8e-9b1d-5e6f7a8b9c0g"),
         msg="event_id"),
    Case("event_id_number", "POST", E, with_(ev("m9"), ("event_id",), 42), msg="event_id"),
    Case("event_id_empty", "POST", E, with_(ev("m9"), ("event_id",), ""), msg="event_id"),
    Case("event_id_twice_in_batch", "POST", E,
         {"events": [with_(ev("m9"), ("event_id",), "0b7d3c1e-4f2a-4c8e-9b1d-5e6f7a8b9c0d"),
                     with_(ev("m10"), ("event_id",), "0B7D3C1E-4F2A-4C8E-9B1D-5E6F7A8B9C0D")]},
         msg="events[1].event_id"),
    Case("metadata_string", "POST", E, with_(ev("m9"), ("metadata",), "x"), msg="metadata"),
    Case("metadata_array", "POST", E, with_(ev("m9"), ("metadata",), [1]), msg="metadata"),
    Case("metadata_number", "POST", E, with_(ev("m9"), ("metadata",), 1), msg="metadata"),
    Case("batch_metadata_true", "POST", E,
         {"events": [ev("m9"), with_(ev("m10"), ("metadata",), True)]},
         msg="events[1].metadata"),
    Case("event_named_erased", "POST", E, ev("m9", etype="User.Erased"), msg="Erased"),
    Case("batch_event_named_erased", "POST", E,
         {"events": [ev("m9"), ev("m10", etype="com.acme.Invoice.Erased")]},
         msg="events[1].event_type"),
    # an offset that normalises out of years 0000..9999 (issue 12)
    Case("occurred_on_past_year_9999", "POST", E,
         ev("m5", occurred_on="9999-12-31T23:30:00-01:00"), msg="occurred_on"),
    Case("occurred_on_before_year_0", "POST", E,
         ev("m5", occurred_on="0000-01-01T00:30:00+01:00"), msg="occurred_on"),
    # --- batches
    Case("batch_events_object", "POST", E, {"events": {"a": ev("m6")}}, msg="events"),
    Case("batch_events_string", "POST", E, {"events": "m6"}, msg="events"),
    Case("batch_empty", "POST", E, {"events": []}, msg="events"),
    Case("batch_1001", "POST", E, {"events": [ev(f"b{i}") for i in range(1001)]},
         msg="events"),
    Case("batch_element_number", "POST", E, {"events": [ev("m6"), 5]}, msg="events[1]"),
    Case("batch_element_array", "POST", E, {"events": [ev("m6"), [ev("m7")]]},
         msg="events[1]"),
    Case("batch_element_bad_version", "POST", E,
         {"events": [ev("m6"), ev("m7", version="1")]}, msg="events[1].originator.version"),
    Case("batch_element_bad_id", "POST", E, {"events": [ev("m6"), ev("a b")]},
         msg="events[1].originator.id"),
    Case("batch_element_no_event_type", "POST", E,
         {"events": [ev("m6"), without(ev("m7"), "event_type")]}, msg="events[1].event_type"),
    Case("batch_element_no_payload", "POST", E,
         {"events": [ev("m6"), ev("m7"), without(ev("m8"), "payload")]},
         msg="events[2].payload"),
    # --- bytes that are not UTF-8, nesting
    Case("invalid_utf8_in_payload", "POST", E,
         raw_event("m8", payload_literal=b'{"s":"\xff\xfe"}')),
    Case("invalid_utf8_in_id", "POST", E, raw_event(b"m8\xc3")),
    Case("overlong_utf8", "POST", E, raw_event("m8", payload_literal=b'"\xc0\xaf"')),
    Case("deep_array_payload", "POST", E, raw_event("m8", payload_literal=DEEP_ARRAY)),
    Case("deep_object_payload", "POST", E, raw_event("m8", payload_literal=DEEP_OBJECT)),
    # JSON that jansson parses but SQLite's JSON functions (1000 levels, 2000
    # before 3.42) would refuse: the body limit (900 levels here) answers first.
    Case("deep_1999_payload", "POST", E, raw_event("m8", payload_literal=nested(1999)),
         msg="levels deep"),
    Case("deep_900_payload", "POST", E, raw_event("m8", payload_literal=nested(900)),
         msg="901 levels deep; at most 900"),
    Case("deep_snapshot_payload", "PUT", "/v1/snapshots/seed",
         b'{"version":1,"payload":' + nested(1500) + b"}", msg="levels deep"),
    # --- GET /v1/events/{id} query parameters and path
    Case("read_limit_0", "GET", q("/v1/events/seed", limit=0), msg="limit"),
    Case("read_limit_10001", "GET", q("/v1/events/seed", limit=10001), msg="limit"),
    Case("read_limit_abc", "GET", q("/v1/events/seed", limit="abc"), msg="limit"),
    Case("read_limit_empty", "GET", q("/v1/events/seed", limit=""), msg="limit"),
    Case("read_limit_real", "GET", q("/v1/events/seed", limit="1.5"), msg="limit"),
    Case("read_from_version_abc", "GET", q("/v1/events/seed", from_version="abc"),
         msg="from_version"),
    Case("read_from_version_0", "GET", q("/v1/events/seed", from_version=0),
         msg="from_version"),
    Case("read_to_version_neg", "GET", q("/v1/events/seed", to_version=-1),
         msg="to_version"),
    Case("read_from_version_huge", "GET",
         q("/v1/events/seed", from_version="99999999999999999999"), msg="from_version"),
    Case("read_limit_hex", "GET", q("/v1/events/seed", limit="0x10"), msg="limit"),
    Case("read_bad_id_hash", "GET", "/v1/events/a%23b", msg="originator_id"),
    Case("read_bad_id_space", "GET", "/v1/events/a%20b", msg="originator_id"),
    Case("read_id_129", "GET", "/v1/events/" + ID129, msg="originator_id"),
    # --- GET /v1/logs
    Case("logs_size_0", "GET", q("/v1/logs", size=0), msg="size"),
    Case("logs_size_1001", "GET", q("/v1/logs", size=1001), msg="size"),
    Case("logs_size_abc", "GET", q("/v1/logs", size="abc"), msg="size"),
    Case("logs_from_id_neg", "GET", q("/v1/logs", from_id=-1), msg="from_id"),
    Case("logs_from_id_abc", "GET", q("/v1/logs", from_id="abc"), msg="from_id"),
    Case("logs_from_id_huge", "GET", q("/v1/logs", from_id="99999999999999999999"),
         msg="from_id"),
    Case("logs_wait_61", "GET", q("/v1/logs", wait=61), msg="wait"),
    Case("logs_wait_neg", "GET", q("/v1/logs", wait=-1), msg="wait"),
    Case("logs_wait_abc", "GET", q("/v1/logs", wait="soon"), msg="wait"),
    Case("logs_selector_no_dot", "GET", q("/v1/logs", selector="User"), msg="selector"),
    Case("logs_selector_trailing_dot", "GET", q("/v1/logs", selector="User."),
         msg="selector"),
    Case("logs_selector_leading_dot", "GET", q("/v1/logs", selector=".Created"),
         msg="selector"),
    Case("logs_selector_double_dot", "GET", q("/v1/logs", selector="User..Created"),
         msg="selector"),
    Case("logs_selector_space", "GET", q("/v1/logs", selector="User.Cre ated"),
         msg="selector"),
    Case("logs_selector_partial_star", "GET", q("/v1/logs", selector="Us*.Created"),
         msg="selector"),
    Case("logs_selector_double_star", "GET", q("/v1/logs", selector="**"), msg="selector"),
    Case("logs_pipeline_space", "GET", q("/v1/logs", pipeline_id="Us er"),
         msg="pipeline_id"),
    Case("logs_pipeline_trailing_dot", "GET", q("/v1/logs", pipeline_id="User."),
         msg="pipeline_id"),
    Case("logs_pipeline_star", "GET", q("/v1/logs", pipeline_id="*"), msg="pipeline_id"),
    Case("logs_stream_bad_selector", "GET", q("/v1/logs/stream", selector="User"),
         msg="selector"),
    Case("logs_stream_bad_from_id", "GET", q("/v1/logs/stream", from_id="abc"),
         msg="from_id"),
    # --- bytes that are not UTF-8 text in the query or a header (issue 12):
    # 400 naming the parameter, whether the service reads it or not
    Case("logs_from_id_invalid_utf8", "GET", "/v1/logs?from_id=%ff", msg="from_id"),
    Case("logs_size_invalid_utf8", "GET", "/v1/logs?size=%80", msg="size"),
    Case("logs_selector_invalid_utf8", "GET", "/v1/logs?selector=User.%c3", msg="selector"),
    Case("logs_pipeline_invalid_utf8", "GET", "/v1/logs?pipeline_id=%ed%a0%80",
         msg="pipeline_id"),
    Case("logs_unknown_param_invalid_utf8", "GET", "/v1/logs?colour=%ff", msg="colour"),
    Case("logs_param_name_invalid_utf8", "GET", "/v1/logs?%ff=1", msg="query"),
    Case("logs_stream_from_id_invalid_utf8", "GET", "/v1/logs/stream?from_id=%ff",
         msg="from_id"),
    Case("logs_stream_last_event_id_invalid_utf8", "GET", "/v1/logs/stream",
         headers={"Last-Event-ID": "\xff"}, msg="Last-Event-ID"),
    Case("logs_stream_last_event_id_digits_then_invalid", "GET", "/v1/logs/stream",
         headers={"Last-Event-ID": "5\xc3"}, msg="Last-Event-ID"),
    Case("read_limit_invalid_utf8", "GET", "/v1/events/seed?limit=%80", msg="limit"),
    Case("streams_entity_type_invalid_utf8", "GET", "/v1/streams?entity_type=%c3%28",
         msg="entity_type"),
    Case("snapshot_max_version_invalid_utf8", "GET", "/v1/snapshots/seed?max_version=%ff",
         msg="max_version"),
    # a NUL byte in a query value would end it early: limit=5%00x is not 5
    Case("read_limit_nul", "GET", "/v1/events/seed?limit=5%00x", msg="limit"),
    Case("logs_from_id_nul", "GET", "/v1/logs?from_id=1%00", msg="from_id"),
    # --- a path segment is decoded, then checked whole (issue 12): a NUL
    # byte does not cut the id short, an encoded '/' does not split it
    Case("read_id_nul", "GET", "/v1/events/seed%00zz", msg="originator_id"),
    Case("read_id_nul_first", "GET", "/v1/events/%00", msg="originator_id"),
    Case("read_id_encoded_slash", "GET", "/v1/events/seed%2Fextra", msg="originator_id"),
    Case("read_id_invalid_utf8", "GET", "/v1/events/seed%ff", msg="originator_id"),
    Case("stream_id_nul", "GET", "/v1/streams/seed%00x", msg="originator_id"),
    Case("snapshot_id_nul", "PUT", "/v1/snapshots/seed%00x", {"version": 1, "payload": {}},
         msg="originator_id"),
    Case("snapshot_get_id_nul", "GET", "/v1/snapshots/seed%00x", msg="originator_id"),
    Case("literal_segment_nul", "GET", "/v1/logs%00/stream", status=404),
    Case("literal_segment_nul_end", "POST", "/v1/events%00", j(ev("m10")), status=404),
    # --- GET /v1/streams
    Case("streams_no_entity_type", "GET", "/v1/streams", msg="entity_type"),
    Case("streams_entity_type_empty", "GET", q("/v1/streams", entity_type=""),
         msg="entity_type"),
    Case("streams_entity_type_space", "GET", q("/v1/streams", entity_type="Us er"),
         msg="entity_type"),
    Case("streams_entity_type_dots", "GET", q("/v1/streams", entity_type="User.."),
         msg="entity_type"),
    Case("streams_limit_0", "GET", q("/v1/streams", entity_type="User", limit=0),
         msg="limit"),
    Case("streams_limit_1001", "GET", q("/v1/streams", entity_type="User", limit=1001),
         msg="limit"),
    Case("streams_after_garbage", "GET",
         q("/v1/streams", entity_type="User", after="!!not-a-cursor!!"), msg="after"),
    Case("stream_bad_id", "GET", "/v1/streams/a%23b", msg="originator_id"),
    # --- snapshots
    Case("snapshot_no_version", "PUT", "/v1/snapshots/seed", {"payload": {}}, msg="version"),
    Case("snapshot_version_string", "PUT", "/v1/snapshots/seed",
         {"version": "1", "payload": {}}, msg="version"),
    Case("snapshot_version_0", "PUT", "/v1/snapshots/seed", {"version": 0, "payload": {}},
         msg="version"),
    Case("snapshot_version_neg", "PUT", "/v1/snapshots/seed", {"version": -1, "payload": {}},
         msg="version"),
    Case("snapshot_version_real", "PUT", "/v1/snapshots/seed",
         {"version": 1.5, "payload": {}}, msg="version"),
    Case("snapshot_version_beyond_int64", "PUT", "/v1/snapshots/seed",
         b'{"version": 9223372036854775808, "payload": {}}', msg="version"),
    Case("snapshot_no_payload", "PUT", "/v1/snapshots/seed", {"version": 1}, msg="payload"),
    Case("snapshot_body_array", "PUT", "/v1/snapshots/seed", [1, {}], msg="body"),
    Case("snapshot_body_string", "PUT", "/v1/snapshots/seed", b'"state"', msg="body"),
    Case("snapshot_bad_json", "PUT", "/v1/snapshots/seed", b'{"version": 1,', msg="JSON"),
    Case("snapshot_empty_body", "PUT", "/v1/snapshots/seed", b"", msg="body"),
    Case("snapshot_bad_id", "PUT", "/v1/snapshots/a%20b", {"version": 1, "payload": {}},
         msg="originator_id"),
    Case("snapshot_get_max_version_abc", "GET", q("/v1/snapshots/seed", max_version="abc"),
         msg="max_version"),
    Case("snapshot_get_max_version_neg", "GET", q("/v1/snapshots/seed", max_version=-1),
         msg="max_version"),
    # --- conflicts
    Case("conflict_version_taken", "POST", E, ev("seed", version=1), status=409,
         details={"current_version": 1}),
    Case("conflict_version_gap", "POST", E, ev("seed", version=3), status=409,
         details={"current_version": 1}),
    Case("conflict_new_stream_v2", "POST", E, ev("m9", version=2), status=409,
         details={"current_version": 0}),
    Case("conflict_in_batch", "POST", E,
         {"events": [ev("m9"), ev("seed", version=1)]}, status=409),
    Case("conflict_snapshot_ahead", "PUT", "/v1/snapshots/seed",
         {"version": 5, "payload": {}}, status=409),
    Case("conflict_snapshot_no_stream", "PUT", "/v1/snapshots/m9",
         {"version": 1, "payload": {}}, status=409),
    # --- direction=backward on stream reads
    Case("read_direction_unknown", "GET", q("/v1/events/seed", direction="sideways"),
         msg="direction"),
    Case("read_direction_empty", "GET", q("/v1/events/seed", direction=""), msg="direction"),
    Case("read_direction_upper_case", "GET", q("/v1/events/seed", direction="BACKWARD"),
         msg="direction"),
    Case("read_direction_nul", "GET", "/v1/events/seed?direction=backward%00",
         msg="direction"),
    Case("read_backward_from_0", "GET", q("/v1/events/seed", direction="backward",
                                          from_version=0), msg="from_version"),
    Case("read_backward_to_neg", "GET", q("/v1/events/seed", direction="backward",
                                          to_version=-1), msg="to_version"),
    Case("read_backward_limit_0", "GET", q("/v1/events/seed", direction="backward", limit=0),
         msg="limit"),
    # --- PUT /v1/streams/{id}/metadata
    Case("meta_max_count_0", "PUT", "/v1/streams/seed/metadata", {"max_count": 0}, msg="max_count"),
    Case("meta_max_count_neg", "PUT", "/v1/streams/seed/metadata", {"max_count": -3}, msg="max_count"),
    Case("meta_max_count_string", "PUT", "/v1/streams/seed/metadata", {"max_count": "5"}, msg="max_count"),
    Case("meta_max_count_real", "PUT", "/v1/streams/seed/metadata", {"max_count": 1.5}, msg="max_count"),
    Case("meta_max_count_true", "PUT", "/v1/streams/seed/metadata", {"max_count": True}, msg="max_count"),
    Case("meta_max_count_object", "PUT", "/v1/streams/seed/metadata", {"max_count": {"n": 1}}, msg="max_count"),
    Case("meta_max_count_beyond_int64", "PUT", "/v1/streams/seed/metadata", b'{"max_count": 9223372036854775808}',
         msg="max_count"),
    Case("meta_max_age_0", "PUT", "/v1/streams/seed/metadata", {"max_age_seconds": 0}, msg="max_age_seconds"),
    Case("meta_max_age_string", "PUT", "/v1/streams/seed/metadata", {"max_age_seconds": "60"},
         msg="max_age_seconds"),
    Case("meta_truncate_before_0", "PUT", "/v1/streams/seed/metadata", {"truncate_before": 0},
         msg="truncate_before"),
    Case("meta_truncate_before_array", "PUT", "/v1/streams/seed/metadata", {"truncate_before": [2]},
         msg="truncate_before"),
    Case("meta_one_bad_among_good", "PUT", "/v1/streams/seed/metadata", {"max_count": 2, "truncate_before": -1},
         msg="truncate_before"),
    Case("meta_body_array", "PUT", "/v1/streams/seed/metadata", [{"max_count": 1}], msg="body"),
    Case("meta_body_string", "PUT", "/v1/streams/seed/metadata", b'"max_count"', msg="body"),
    Case("meta_bad_json", "PUT", "/v1/streams/seed/metadata", b'{"max_count": 1,', msg="JSON"),
    Case("meta_empty_body", "PUT", "/v1/streams/seed/metadata", b"", msg="body"),
    Case("meta_bad_id", "PUT", "/v1/streams/a%20b/metadata", {"max_count": 1},
         msg="originator_id"),
    Case("meta_id_nul", "PUT", "/v1/streams/seed%00x/metadata", {"max_count": 1},
         msg="originator_id"),
    Case("meta_unknown_stream", "PUT", "/v1/streams/nobody/metadata", {"max_count": 1},
         status=404),
    Case("meta_xml", "PUT", "/v1/streams/seed/metadata", {"max_count": 1}, status=415,
         headers={"Content-Type": "application/xml"}),
    Case("meta_get", "GET", "/v1/streams/seed/metadata", status=405, allow=["PUT"]),
    Case("meta_post", "POST", "/v1/streams/seed/metadata", {"max_count": 1}, status=405, allow=["PUT"]),
    # --- DELETE /v1/streams/{id} (erasure): nothing is erased by these
    Case("erase_expected_version_abc", "DELETE", q("/v1/streams/seed", expected_version="abc"),
         msg="expected_version"),
    Case("erase_expected_version_neg", "DELETE", q("/v1/streams/seed", expected_version=-1),
         msg="expected_version"),
    Case("erase_expected_version_real", "DELETE", q("/v1/streams/seed", expected_version=1.5),
         msg="expected_version"),
    Case("erase_expected_version_beyond_int64", "DELETE",
         q("/v1/streams/seed", expected_version="9223372036854775808"), msg="expected_version"),
    Case("erase_expected_version_stale", "DELETE", q("/v1/streams/seed", expected_version=7),
         status=409, details={"current_version": 1}),
    Case("erase_expected_version_0", "DELETE", q("/v1/streams/seed", expected_version=0),
         status=409, details={"current_version": 1}),
    Case("erase_bad_id", "DELETE", "/v1/streams/a%23b", msg="originator_id"),
    Case("erase_id_nul", "DELETE", "/v1/streams/seed%00x", msg="originator_id"),
    Case("erase_unknown_stream", "DELETE", "/v1/streams/nobody", status=404),
    Case("patch_stream", "PATCH", "/v1/streams/seed", b"{}", status=405,
         allow=["GET", "DELETE"]),
    # --- not found
    Case("unknown_path", "GET", "/v1/nope", status=404),
    Case("root_path", "GET", "/", status=404),
    Case("unknown_version_prefix", "POST", "/v2/events", j(ev("m10")), status=404),
    Case("extra_segment", "GET", "/v1/events/seed/extra", status=404),
    Case("trailing_garbage_path", "POST", "/v1/eventsx", j(ev("m10")), status=404),
    Case("unknown_stream", "GET", "/v1/streams/nobody", status=404),
    Case("unknown_snapshot", "GET", "/v1/snapshots/nobody", status=404),
    # --- wrong method
    Case("delete_events", "DELETE", E, status=405, allow=["POST"]),
    Case("get_events", "GET", E, status=405, allow=["POST"]),
    Case("put_events", "PUT", E, j(ev("m11")), status=405, allow=["POST"]),
    Case("post_event_stream", "POST", "/v1/events/seed", j(ev("seed")), status=405,
         allow=["GET"]),
    Case("delete_event_stream", "DELETE", "/v1/events/seed", status=405, allow=["GET"]),
    Case("post_logs", "POST", "/v1/logs", j(ev("m11")), status=405, allow=["GET"]),
    Case("patch_streams", "PATCH", "/v1/streams", b"{}", status=405, allow=["GET"]),
    Case("delete_snapshot", "DELETE", "/v1/snapshots/seed", status=405,
         allow=["GET", "PUT"]),
    Case("post_snapshot", "POST", "/v1/snapshots/seed", {"version": 1, "payload": {}},
         status=405, allow=["GET", "PUT"]),
    # --- media types that are clearly not JSON (valid JSON bodies: a server
    # that ignored the type would append and move the log head)
    Case("ct_text_xml", "POST", E, ev("m12"), status=415,
         headers={"Content-Type": "text/xml"}),
    Case("ct_application_xml", "POST", E, ev("m13"), status=415,
         headers={"Content-Type": "application/xml"}),
    Case("ct_multipart", "POST", E, ev("m14"), status=415,
         headers={"Content-Type": "multipart/form-data; boundary=xyz"}),
    Case("ct_text_html", "POST", E, ev("m15"), status=415,
         headers={"Content-Type": "text/html; charset=utf-8"}),
    Case("ct_xml_upper_case", "POST", E, ev("m16"), status=415,
         headers={"Content-Type": "TEXT/XML"}),
    Case("ct_snapshot_xml", "PUT", "/v1/snapshots/seed", {"version": 1, "payload": {}},
         status=415, headers={"Content-Type": "application/xml"}),
    # --- framing that two readers could take two ways (issue 12): two
    # different Content-Lengths, or one with Transfer-Encoding (RFC 9112 6.3)
    Case("content_length_twice_short_first", "POST", E, j(ev("m18")),
         headers=[("Content-Length", "2"), ("Content-Length", str(len(j(ev("m18")))))],
         msg="Content-Length"),
    Case("content_length_twice_long_first", "POST", E, j(ev("m18")),
         headers=[("Content-Length", str(len(j(ev("m18"))))), ("Content-Length", "2")],
         msg="Content-Length"),
    Case("content_length_twice_bigger_second", "POST", E, j(ev("m18")),
         headers=[("Content-Length", str(len(j(ev("m18"))))), ("Content-Length", "4096")],
         msg="Content-Length"),
    Case("content_length_with_transfer_encoding", "POST", E,
         b"%x\r\n%s\r\n0\r\n\r\n" % (len(j(ev("m18"))), j(ev("m18"))),
         headers=[("Transfer-Encoding", "chunked"), ("Content-Length", "2")],
         msg="Content-Length"),
    # --- larger than the default 1 MiB limit
    Case("body_over_default_limit", "POST", E, ev("m17", payload="x" * (1 << 20)),
         status=413),
]


def test_catalogue_is_large_enough():
    assert len(CASES) >= 45, len(CASES)
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    for c in CASES:
        assert c.status in CODES, c
        if c.status == 400:
            # every 400 says what was wrong: a field, or the body's JSON
            assert c.msg or c.id.startswith(("payload_", "invalid_utf8", "overlong",
                                              "deep_")), c


# Valid requests that stretch the edges; each must succeed. (method, path,
# body, headers, status, events appended)
POSITIVE = [
    ("unknown_fields_ignored", "POST", E,
     j({"originator": {"id": "ok1", "version": 1, "shard": 3}, "event_type": "User.Created",
        "payload": {}, "trace_id": "abc", "extra": {"x": [1]}}), {}, 201, 1),
    ("unknown_fields_in_batch", "POST", E,
     j({"events": [ev("ok2", meta=1)], "idempotency": "k"}), {}, 201, 1),
    ("form_urlencoded_read_as_json", "POST", E, j(ev("ok3")),
     {"Content-Type": "application/x-www-form-urlencoded"}, 201, 1),
    ("text_plain_read_as_json", "POST", E, j(ev("ok4")), {"Content-Type": "text/plain"},
     201, 1),
    ("no_content_type", "POST", E, j(ev("ok5")), {"Content-Type": None}, 201, 1),
    ("json_charset", "POST", E, j(ev("ok6")),
     {"Content-Type": "application/json; charset=utf-8"}, 201, 1),
    ("id_128_all_chars", "POST", E,
     j(ev(("AZaz09._:@-" * 12)[:128])), {}, 201, 1),
    ("event_type_200_chars", "POST", E, j(ev("ok7", etype="A" * 194 + ".Event")), {}, 201,
     1),
    ("occurred_on_offset", "POST", E,
     j(ev("ok8", occurred_on="2024-02-29T23:59:59.999+05:30")), {}, 201, 1),
    ("occurred_on_last_ms_of_9999", "POST", E,
     j(ev("ok9", occurred_on="9999-12-31T22:59:59.999-01:00")), {}, 201, 1),
    ("content_length_twice_the_same", "POST", E, j(ev("ok10")),
     [("Content-Length", str(len(j(ev("ok10"))))), ("Content-Length", str(len(j(ev("ok10")))))],
     201, 1),
    ("payload_899_deep", "POST", E, raw_event("deep-ok", payload_literal=nested(899)), {},
     201, 1),
    ("batch_1000", "POST", E, j({"events": [ev(f"k{i}") for i in range(1000)]}), {}, 201,
     1000),
    ("snapshot_unknown_fields", "PUT", "/v1/snapshots/seed",
     j({"version": 1, "payload": {"s": 1}, "note": "x"}), {}, 204, 0),
    ("read_unknown_query_ignored", "GET", q("/v1/events/seed", colour="blue"), None, {}, 200,
     0),
    ("logs_selector_stars", "GET", q("/v1/logs", selector="*.*"), None, {}, 200, 0),
    ("logs_limits", "GET", q("/v1/logs", size=1000, wait=0, from_id=0), None, {}, 200, 0),
    ("read_limit_bounds", "GET", q("/v1/events/seed", limit=10000, from_version=1), None, {},
     200, 0),
]


def test_malformed_requests_catalogue(event_store):
    c = event_store.client()
    r = c.post(E, ev("seed", version=1))
    assert r.status == 201, r
    r = c.put("/v1/snapshots/seed", {"version": 1, "payload": {"state": 1}})
    assert r.status == 204, r
    head = head_id(c)
    assert head >= 1

    failures = run_cases(event_store.url, CASES)

    # nothing that failed wrote anything
    after = head_id(c)
    extra = []
    if after != head:
        moved = c.get("/v1/logs", params={"from_id": head + 1, "size": 1000}).json
        extra.append(f"log head moved from {head} to {after}: "
                     f"{[x['event']['originator'] for x in moved['results']]}")
    seed = c.get("/v1/events/seed").json
    if [e["originator"]["version"] for e in seed["events"]] != [1]:
        extra.append(f"stream seed changed: {seed}")
    meta = c.get("/v1/streams/seed").json
    if meta.get("metadata") != {"max_count": None, "max_age_seconds": None,
                                "truncate_before": None} or meta.get("first_version") != 1:
        extra.append(f"retention of seed changed: {meta}")
    snap = c.get("/v1/snapshots/seed")
    if snap.status != 200 or snap.json != {"version": 1, "payload": {"state": 1}}:
        extra.append(f"snapshot of seed changed: {snap}")

    report = "\n".join(failures + extra)
    assert not failures and not extra, (
        f"{len(failures)} of {len(CASES)} malformed requests answered wrongly "
        f"({event_store.url}):\n" + report)

    # the service is alive and well
    assert c.get("/healthz").status == 200
    r = c.post(E, ev("seed", version=2))
    assert r.status == 201, r
    assert r.json["log_id"] > head


def test_two_content_lengths_smuggle_no_request(event_store):
    """A request whose length two readers would take two ways is refused with
    400 and its connection closed, so that nothing after the shorter length
    is read as a request of its own (request smuggling). Here the first
    Content-Length covers `{}` and the second also a whole append behind it:
    one 400 comes back, and the append never happens."""
    import socket
    import urllib.parse
    c = event_store.client()
    head = head_id(c)
    inner = j(ev("smuggled"))
    hidden = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(inner), inner))
    body = b"{}" + hidden
    for first, second in ((2, len(body)), (len(body), 2)):
        req = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n%s" % (first, second, body))
        u = urllib.parse.urlparse(event_store.url)
        sock = socket.create_connection((u.hostname, u.port), timeout=5)
        got = b""
        try:
            sock.sendall(req)
            while True:
                try:
                    chunk = sock.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                got += chunk
        finally:
            sock.close()
        assert got.startswith(b"HTTP/1.1 400"), got
        assert got.count(b"HTTP/1.1 ") == 1, got
        assert b"Content-Length" in got.partition(b"\r\n\r\n")[2], got
    assert head_id(c) == head
    assert c.get(E + "/smuggled").json == {"events": []}


def test_edges_that_are_valid(event_store):
    """Positive controls: unknown fields ignored, curl's form type and text/plain
    read as JSON, the largest valid ids, types and batches."""
    c = event_store.client()
    assert c.post(E, ev("seed", version=1)).status == 201
    head = head_id(c)
    failures = []
    appended = 0
    for name, method, path, body, headers, status, n in POSITIVE:
        r = send(event_store.url, method, path, body, headers)
        if r.status != status:
            failures.append(f"{name}: {method} {path[:80]} -> {r.status} {r.body[:300]!r}, "
                            f"want {status}")
        else:
            appended += n
    assert not failures, "\n".join(failures)
    assert head_id(c) == head + appended
    got = c.get(E + "/ok8").json["events"][0]["occurred_on"]
    assert got == "2024-02-29T18:29:59.999Z"
    got = c.get(E + "/ok9").json["events"][0]["occurred_on"]
    assert got == "9999-12-31T23:59:59.999Z"
    assert c.get(E + "/ok1").json["events"][0]["originator"] == {"id": "ok1", "version": 1}
    deep = send(event_store.url, "GET", E + "/deep-ok")  # raw: Python's json stops at ~1000
    assert deep.status == 200, deep
    assert '"payload":' + nested(899).decode() in deep.body, deep.body[:200]


# --------------------------------------------------------------------------
# the body limit, on an event store started with ESKIT_MAX_BODY_BYTES=1024


def sized_event(oid, size):
    """A valid event of exactly `size` bytes of JSON."""
    base = j(ev(oid, payload=""))
    body = j(ev(oid, payload="x" * (size - len(base))))
    assert len(body) == size
    return body


def test_oversize_bodies(backend, services):
    s = services("event-store", {"ESKIT_DATABASE_URL": backend(),
                                 "ESKIT_MAX_BODY_BYTES": "1024"})
    assert s.wait_ready(), s.log()
    c = s.client()
    assert c.post(E, ev("seed", version=1)).status == 201
    head = head_id(c)
    big = sized_event("big", 2048)
    snap = j({"version": 1, "payload": "y" * 2048})
    cases = [
        ("content_length_2k", dict(body=big)),
        ("chunked_2k", dict(body=big, chunked=True)),
        ("content_length_1025", dict(body=sized_event("big", 1025))),
        ("chunked_1025", dict(body=sized_event("big", 1025), chunked=True)),
        ("chunked_form_type", dict(body=big, chunked=True,
                                   headers={"Content-Type":
                                            "application/x-www-form-urlencoded"})),
        ("content_length_1m", dict(body=sized_event("big", 1 << 20))),
        ("chunked_1m", dict(body=sized_event("big", 1 << 20), chunked=True)),
        ("snapshot_2k", dict(body=snap, path="/v1/snapshots/seed", method="PUT")),
        ("snapshot_chunked_2k", dict(body=snap, path="/v1/snapshots/seed", method="PUT",
                                     chunked=True)),
    ]
    failures = []
    for name, kw in cases:
        method = kw.pop("method", "POST")
        path = kw.pop("path", E)
        case = Case(name, method, path, status=413)
        try:
            r = send(s.url, method, path, **kw)
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        problems = check(case, r)
        if problems:
            failures.append(f"{name}: -> {r.status} {r.body[:300]!r}: " + "; ".join(problems))
    assert not failures, "\n".join(failures)
    assert head_id(c) == head
    assert c.get(E + "/big").json == {"events": []}
    assert c.get("/v1/snapshots/seed").status == 404
    # at the limit is fine, with a length or chunked
    r = send(s.url, "POST", E, sized_event("fits", 1024))
    assert r.status == 201, r
    r = send(s.url, "POST", E, sized_event("fits", 1024), chunked=True)
    assert r.status == 201, r
    assert c.get("/healthz").status == 200


# --------------------------------------------------------------------------
# the bearer token, on an event store started with ESKIT_API_TOKEN

TOKEN = "s3cret-T0ken_value"


def test_token_required(backend, services):
    s = services("event-store", {"ESKIT_DATABASE_URL": backend(),
                                 "ESKIT_API_TOKEN": TOKEN})
    assert s.wait_ready(), s.log()
    good = s.client(token=TOKEN)
    assert good.post(E, ev("seed", version=1)).status == 201
    head = head_id(good)

    def auth(value):
        return {"Authorization": value}

    cases = [
        Case("no_token_append", "POST", E, ev("t1"), status=401),
        Case("no_token_read", "GET", "/v1/events/seed", status=401),
        Case("no_token_logs", "GET", "/v1/logs", status=401),
        Case("no_token_streams", "GET", "/v1/streams?entity_type=User", status=401),
        Case("no_token_snapshot", "PUT", "/v1/snapshots/seed", {"version": 1, "payload": {}},
             status=401),
        Case("no_token_sse", "GET", "/v1/logs/stream", status=401),
        Case("wrong_token", "POST", E, ev("t2"), status=401, headers=auth("Bearer nope")),
        Case("token_prefix", "POST", E, ev("t3"), status=401,
             headers=auth("Bearer " + TOKEN[:-1])),
        Case("token_longer", "POST", E, ev("t4"), status=401,
             headers=auth("Bearer " + TOKEN + "x")),
        Case("basic_scheme", "POST", E, ev("t5"), status=401,
             headers=auth("Basic " + TOKEN)),
        Case("bare_token", "POST", E, ev("t6"), status=401, headers=auth(TOKEN)),
        Case("bearer_empty", "POST", E, ev("t7"), status=401, headers=auth("Bearer ")),
        Case("bearer_no_space", "POST", E, ev("t8"), status=401,
             headers=auth("Bearer" + TOKEN)),
        Case("wrong_token_read", "GET", "/v1/logs", status=401, headers=auth("Bearer nope")),
        # authentication comes before looking at the body
        Case("no_token_bad_json", "POST", E, b"{not json", status=401),
    ]
    failures = run_cases(s.url, cases)
    assert not failures, (f"{len(failures)} of {len(cases)} unauthenticated requests "
                          "answered wrongly:\n" + "\n".join(failures))
    assert head_id(good) == head

    anon = s.client()
    for path in ("/healthz", "/readyz", "/metrics"):
        r = anon.get(path)
        assert r.status == 200, (path, r)
    r = good.post(E, ev("t9"))
    assert r.status == 201, r
    assert good.get("/v1/events/t9").status == 200
    assert head_id(good) > head
