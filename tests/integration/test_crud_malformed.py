"""A catalogue of malformed requests to the CRUD store (SPEC §2, §4).

Every case is a raw HTTP request and the 4xx answer SPEC §2 demands: the right
status, the error body {"error": {"code", "message", "details"}} with the code
that goes with the status, for 400s a message naming the field, for 401 a
`WWW-Authenticate: Bearer` header and for 405 an `Allow` header. A request that
fails changes nothing: after the whole catalogue the event store's log head has
not moved, the seed document is as it was, and the CRUD store still answers.

The catalogue runs in one test per back end and reports every failing case at
once rather than stopping at the first. The body limit (413) and the bearer
token (401) need services configured for them and have tests of their own.
"""
import functools

import pytest

import catalogue
from catalogue import Case, j, q, send
from crud_fixtures import CODES, start_crud_env

# The CRUD store's answers are checked against its own code table (which also
# has 500 and 503), and a 405's Allow must not list the refused method.
check = functools.partial(catalogue.check, codes=CODES, allow_excludes_method=True)
run_cases = functools.partial(catalogue.run_cases, codes=CODES, allow_excludes_method=True)


@pytest.fixture
def crud(crud_store):
    """The conftest's crud_store (an event store and a CRUD store, per back end)."""
    return crud_store


# --------------------------------------------------------------------------
# the catalogue (run against a store holding User "seed" at version 2 and the
# registered type "Typed" whose schema wants a string `email`)

C = "/v1/entities/User"
S = C + "/seed"
H = S + "/history"
T = "/v1/types"
ID129 = "a" * 129
ET201 = "A" * 100 + "." + "B" * 100                    # 201 characters
assert len(ET201) == 201
TYPED_SCHEMA = {"type": "object", "properties": {"email": {"type": "string"}}}


def create(payload=None, oid=None, **extra):
    b = {"payload": {"k": "v"} if payload is None else payload}
    if oid is not None:
        b["originator"] = {"id": oid}
    b.update(extra)
    return b


def put_raw(version_literal):
    return b'{"originator":{"version":%s},"payload":{"k":"v"}}' % version_literal


def put(version):
    return {"originator": {"version": version}, "payload": {"k": "v"}}


F = C + "/_find"
B = C + "/_bulk"


def find(selector, **extra):
    return dict({"selector": selector}, **extra)


def bulk(*ops, **extra):
    return dict({"operations": list(ops)}, **extra)


def type_spec(**spec):
    return {"spec": spec}


CASES = [
    # --- not JSON / not the right JSON
    Case("bad_json", "POST", C, b"{not json}", msg="JSON"),
    Case("truncated_json", "POST", C, j(create(oid="m0"))[:-5], msg="JSON"),
    Case("truncated_after_key", "POST", C, b'{"payload":', msg="JSON"),
    Case("trailing_garbage", "POST", C, j(create(oid="m0")) + b" x", msg="JSON"),
    Case("single_quotes", "POST", C, b"{'payload': {}}", msg="JSON"),
    Case("empty_body", "POST", C, b"", msg="body"),
    Case("no_body", "POST", C, None, msg="body"),
    Case("top_level_array", "POST", C, b"[]", msg="body"),
    Case("top_level_string", "POST", C, b'"payload"', msg="body"),
    Case("top_level_null", "POST", C, b"null", msg="body"),
    Case("put_bad_json", "PUT", S, b'{"originator":', msg="JSON"),
    Case("put_empty_body", "PUT", S, b"", msg="body"),
    Case("patch_bad_json", "PATCH", S, b"{x}", msg="JSON"),
    Case("patch_empty_body", "PATCH", S, b"", msg="body"),
    Case("types_bad_json", "POST", T, b"[", msg="JSON"),
    Case("invalid_utf8", "POST", C, b'{"payload":{"s":"\xff\xfe"}}'),
    # --- payload of a create
    Case("payload_missing", "POST", C, {"originator": {"id": "m1"}}, msg="payload"),
    Case("payload_array", "POST", C, create([1, 2], "m1"), msg="payload"),
    Case("payload_string", "POST", C, create("doc", "m1"), msg="payload"),
    Case("payload_null", "POST", C, {"payload": None, "originator": {"id": "m1"}},
         msg="payload"),
    Case("payload_number", "POST", C, create(42, "m1"), msg="payload"),
    Case("payload_true", "POST", C, create(True, "m1"), msg="payload"),
    Case("payload_beyond_int64", "POST", C,
         b'{"originator":{"id":"m1"},"payload":{"n":9223372036854775808}}'),
    Case("payload_below_int64", "POST", C,
         b'{"originator":{"id":"m1"},"payload":{"n":[-9223372036854775809]}}'),
    # --- originator of a create
    Case("originator_string", "POST", C, create(originator="m2"), msg="originator"),
    Case("originator_array", "POST", C, create(originator=["m2"]), msg="originator"),
    Case("originator_number", "POST", C, create(originator=7), msg="originator"),
    Case("id_space", "POST", C, create(oid="a b"), msg="originator.id"),
    Case("id_slash", "POST", C, create(oid="a/b"), msg="originator.id"),
    Case("id_hash", "POST", C, create(oid="a#b"), msg="originator.id"),
    Case("id_unicode", "POST", C, create(oid="caf\u00e9"), msg="originator.id"),
    Case("id_129_chars", "POST", C, create(oid=ID129), msg="originator.id"),
    Case("id_empty", "POST", C, create(oid=""), msg="originator.id"),
    Case("id_number", "POST", C, create(oid=42), msg="originator.id"),
    Case("id_object", "POST", C, create(oid={"id": "x"}), msg="originator.id"),
    # --- the version of a PUT
    Case("put_version_string", "PUT", S, put("2"), msg="version"),
    Case("put_version_zero", "PUT", S, put(0), msg="version"),
    Case("put_version_negative", "PUT", S, put(-1), msg="version"),
    Case("put_version_real", "PUT", S, put(1.5), msg="version"),
    Case("put_version_true", "PUT", S, put(True), msg="version"),
    Case("put_version_beyond_int64", "PUT", S, put_raw(b"9223372036854775808"),
         msg="version"),
    Case("put_version_huge", "PUT", S, put_raw(b"1" + b"0" * 40), msg="version"),
    Case("put_version_1e300", "PUT", S, put_raw(b"1e300"), msg="version"),
    Case("put_no_version", "PUT", S, {"payload": {"k": "v"}}, msg="version"),
    Case("put_originator_string", "PUT", S, {"originator": "2", "payload": {}},
         msg="originator"),
    Case("put_payload_missing", "PUT", S, {"originator": {"version": 2}}, msg="payload"),
    Case("put_payload_array", "PUT", S, {"originator": {"version": 2}, "payload": [1]},
         msg="payload"),
    Case("put_payload_string", "PUT", S, {"originator": {"version": 2}, "payload": "x"},
         msg="payload"),
    # --- Idempotency-Key: 1 to 128 characters of the id alphabet
    Case("key_empty_create", "POST", C, create(), headers={"Idempotency-Key": ""},
         msg="Idempotency-Key"),
    Case("key_space_create", "POST", C, create(), headers={"Idempotency-Key": "a b"},
         msg="Idempotency-Key"),
    Case("key_slash_put", "PUT", S, put(1), headers={"Idempotency-Key": "a/b"},
         msg="Idempotency-Key"),
    Case("key_129_patch", "PATCH", S, {"k": 1}, headers={"Idempotency-Key": ID129},
         msg="Idempotency-Key"),
    Case("key_unicode_delete", "DELETE", S, None,
         headers={"Idempotency-Key": "caf\u00e9"}, msg="Idempotency-Key"),
    Case("key_hash_delete", "DELETE", S, None, headers={"Idempotency-Key": "k#1"},
         msg="Idempotency-Key"),
    # --- If-Match
    Case("if_match_word", "PUT", S, {"payload": {}}, headers={"If-Match": "garbage"},
         msg="If-Match"),
    Case("if_match_quoted_word", "PUT", S, {"payload": {}}, headers={"If-Match": '"abc"'},
         msg="If-Match"),
    Case("if_match_negative", "PUT", S, {"payload": {}}, headers={"If-Match": '"-1"'},
         msg="If-Match"),
    Case("if_match_real", "PUT", S, {"payload": {}}, headers={"If-Match": '"1.5"'},
         msg="If-Match"),
    Case("if_match_beyond_int64", "PUT", S, {"payload": {}},
         headers={"If-Match": '"99999999999999999999"'}, msg="If-Match"),
    Case("if_match_empty", "PUT", S, {"payload": {}}, headers={"If-Match": ""}),
    Case("patch_if_match_garbage", "PATCH", S, {"k": "w"}, headers={"If-Match": "xyz"},
         msg="If-Match"),
    Case("delete_if_match_garbage", "DELETE", S, headers={"If-Match": '"two"'},
         msg="If-Match"),
    # --- a merge patch that would make the document a non-object
    Case("patch_array", "PATCH", S, [1, 2]),
    Case("patch_string", "PATCH", S, "doc"),
    Case("patch_null", "PATCH", S, b"null"),
    # --- GET query parameters
    Case("get_version_abc", "GET", q(S, version="abc"), msg="version"),
    Case("get_version_zero", "GET", q(S, version=0), msg="version"),
    Case("get_version_negative", "GET", q(S, version=-1), msg="version"),
    Case("get_version_real", "GET", q(S, version="1.5"), msg="version"),
    Case("get_version_huge", "GET", q(S, version="99999999999999999999"), msg="version"),
    Case("get_version_empty", "GET", q(S, version=""), msg="version"),
    Case("get_deleted_maybe", "GET", q(S, deleted="maybe"), msg="deleted"),
    # --- list
    Case("list_limit_0", "GET", q(C, limit=0), msg="limit"),
    Case("list_limit_101", "GET", q(C, limit=101), msg="limit"),
    Case("list_limit_abc", "GET", q(C, limit="abc"), msg="limit"),
    Case("list_limit_negative", "GET", q(C, limit=-5), msg="limit"),
    Case("list_limit_huge", "GET", q(C, limit="99999999999999999999"), msg="limit"),
    Case("list_page_token_garbage", "GET", q(C, page_token="!!not a token!!"),
         msg="page_token"),
    Case("list_page_token_percent", "GET", q(C, page_token="%%%"), msg="page_token"),
    Case("list_skip_payload_maybe", "GET", q(C, skip_payload="maybe"), msg="skip_payload"),
    Case("list_skip_payload_number", "GET", q(C, skip_payload="2"), msg="skip_payload"),
    # --- history
    Case("history_limit_0", "GET", q(H, limit=0), msg="limit"),
    Case("history_limit_abc", "GET", q(H, limit="abc"), msg="limit"),
    Case("history_limit_negative", "GET", q(H, limit=-1), msg="limit"),
    Case("history_from_version_0", "GET", q(H, from_version=0), msg="from_version"),
    Case("history_from_version_abc", "GET", q(H, from_version="abc"), msg="from_version"),
    Case("history_from_version_huge", "GET", q(H, from_version="99999999999999999999"),
         msg="from_version"),
    # --- entity types and ids in the path
    Case("etype_space", "POST", "/v1/entities/Us%20er", create(), msg="entity_type"),
    Case("etype_bang", "POST", "/v1/entities/User!", create(), msg="entity_type"),
    Case("etype_double_dot", "POST", "/v1/entities/a..b", create(), msg="entity_type"),
    Case("etype_leading_dot", "POST", "/v1/entities/.User", create(), msg="entity_type"),
    Case("etype_trailing_dot", "POST", "/v1/entities/User.", create(), msg="entity_type"),
    Case("etype_201_chars", "POST", "/v1/entities/" + ET201, create(), msg="entity_type"),
    Case("etype_unicode", "POST", "/v1/entities/Us%C3%A9r", create(), msg="entity_type"),
    Case("etype_reserved", "POST", "/v1/entities/eskit.Thing", create(), msg="entity_type"),
    Case("etype_reserved_get", "GET", "/v1/entities/eskit.EntityType/Typed",
         msg="entity_type"),
    Case("etype_reserved_list", "GET", "/v1/entities/eskit.EntityType", msg="entity_type"),
    Case("etype_bad_get", "GET", "/v1/entities/a..b/seed", msg="entity_type"),
    Case("etype_bad_list", "GET", "/v1/entities/a..b", msg="entity_type"),
    Case("path_id_space", "GET", C + "/a%20b", msg="id"),
    Case("path_id_hash", "GET", C + "/a%23b", msg="id"),
    Case("path_id_129", "GET", C + "/" + ID129, msg="id"),
    Case("path_id_put", "PUT", C + "/a%20b", put(1), msg="id"),
    Case("path_id_delete", "DELETE", C + "/" + ID129, msg="id"),
    # a path segment is decoded, then checked whole (issue 12): a NUL byte
    # does not cut it short, an encoded '/' does not split it
    Case("path_id_nul_patch", "PATCH", S + "%00zz", {"k": "w"}, msg="id"),
    Case("path_id_nul_get", "GET", S + "%00zz", msg="id"),
    Case("path_id_nul_put", "PUT", S + "%00zz", put(2), msg="id"),
    Case("path_id_nul_delete", "DELETE", S + "%00zz", msg="id"),
    Case("path_id_nul_history", "GET", S + "%00zz/history", msg="id"),
    Case("path_id_encoded_slash", "GET", C + "/seed%2Fhistory", msg="id"),
    Case("path_id_invalid_utf8", "GET", S + "%c3", msg="id"),
    Case("etype_nul_document", "GET", C + "%00x/seed", msg="entity_type"),
    Case("etype_nul_collection", "GET", C + "%00x", msg="entity_type"),
    Case("etype_nul_create", "POST", C + "%00x", create(oid="m0"), msg="entity_type"),
    Case("etype_invalid_utf8", "GET", C + "%ff", msg="entity_type"),
    Case("types_etype_nul", "GET", T + "/Typed%00x", msg="entity_type"),
    Case("types_put_etype_nul", "PUT", T + "/Typed%00x", type_spec(entity_type="Typed"),
         msg="entity_type"),
    # query values and headers that are not UTF-8 text (issue 12)
    Case("list_limit_invalid_utf8", "GET", C + "?limit=%ff", msg="limit"),
    Case("list_page_token_invalid_utf8", "GET", C + "?page_token=%80", msg="page_token"),
    Case("list_skip_payload_invalid_utf8", "GET", C + "?skip_payload=%ff",
         msg="skip_payload"),
    Case("list_limit_nul", "GET", C + "?limit=5%00", msg="limit"),
    Case("get_version_invalid_utf8", "GET", S + "?version=%c3", msg="version"),
    Case("history_limit_invalid_utf8", "GET", H + "?limit=%ff", msg="limit"),
    Case("types_limit_invalid_utf8", "GET", T + "?limit=%ff", msg="limit"),
    Case("patch_if_match_invalid_utf8", "PATCH", S, {"k": "w"},
         headers={"If-Match": '"\xff"'}, msg="If-Match"),
    Case("delete_if_match_invalid_utf8", "DELETE", S, headers={"If-Match": "\xc3"},
         msg="If-Match"),
    # --- type specs
    Case("types_empty_object", "POST", T, {}, msg="spec"),
    Case("types_spec_string", "POST", T, {"spec": "User"}, msg="spec"),
    Case("types_spec_null", "POST", T, {"spec": None}, msg="spec"),
    Case("types_missing_entity_type", "POST", T, type_spec(), msg="entity_type"),
    Case("types_entity_type_number", "POST", T, type_spec(entity_type=5), msg="entity_type"),
    Case("types_entity_type_bad", "POST", T, type_spec(entity_type="a..b"),
         msg="entity_type"),
    Case("types_entity_type_201", "POST", T, type_spec(entity_type=ET201),
         msg="entity_type"),
    Case("types_schema_version_string", "POST", T,
         type_spec(entity_type="M", schema_spec={"schema_version": "1",
                                                 "json_schema": {}}), msg="schema_version"),
    Case("types_schema_version_zero", "POST", T,
         type_spec(entity_type="M", schema_spec={"schema_version": 0, "json_schema": {}}),
         msg="schema_version"),
    Case("types_schema_version_beyond_int64", "POST", T,
         b'{"spec":{"entity_type":"M","schema_spec":{"schema_version":9223372036854775808,'
         b'"json_schema":{}}}}', msg="schema_version"),
    Case("types_no_schema_version", "POST", T,
         type_spec(entity_type="M", schema_spec={"json_schema": {"type": "object"}}),
         msg="schema_version"),
    Case("types_json_schema_string", "POST", T,
         type_spec(entity_type="M", schema_spec={"schema_version": 1, "json_schema": "{}"}),
         msg="json_schema"),
    Case("types_json_schema_number", "POST", T,
         type_spec(entity_type="M", schema_spec={"schema_version": 1, "json_schema": 1}),
         msg="json_schema"),
    Case("types_json_schema_array", "POST", T,
         type_spec(entity_type="M", schema_spec={"schema_version": 1, "json_schema": []}),
         msg="json_schema"),
    Case("types_json_schema_invalid", "POST", T,
         type_spec(entity_type="M", schema_spec={"schema_version": 1,
                                                 "json_schema": {"type": 5}})),
    Case("types_json_schema_remote_ref", "POST", T,
         type_spec(entity_type="M", schema_spec={
             "schema_version": 1, "json_schema": {"$ref": "http://example.com/s.json"}})),
    Case("types_skip_duplicate_string", "POST", T,
         {"spec": {"entity_type": "M"}, "skip_duplicate": "yes"}, msg="skip_duplicate"),
    Case("types_limit_0", "GET", q(T, limit=0), msg="limit"),
    Case("types_limit_1001", "GET", q(T, limit=1001), msg="limit"),
    Case("types_limit_abc", "GET", q(T, limit="abc"), msg="limit"),
    Case("types_put_no_spec", "PUT", T + "/Typed", {}, msg="spec"),
    Case("types_put_missing_schema_version", "PUT", T + "/Typed",
         type_spec(entity_type="Typed", schema_spec={"json_schema": {}}),
         msg="schema_version"),
    Case("types_get_bad_type", "GET", T + "/a..b", msg="entity_type"),
    # --- schema validation
    Case("schema_failure", "POST", "/v1/entities/Typed", create({"email": 5}, "m3"),
         errors=["/email"]),
    Case("schema_failure_put", "PUT", "/v1/entities/Typed/typed-1",
         {"originator": {"version": 1}, "payload": {"email": [1]}}, errors=["/email"]),
    Case("schema_failure_patch", "PATCH", "/v1/entities/Typed/typed-1", {"email": False},
         errors=["/email"]),
    # --- media types
    Case("post_text_xml", "POST", C, j(create(oid="m4")),
         headers={"Content-Type": "text/xml"}, status=415),
    Case("post_multipart", "POST", C, j(create(oid="m4")),
         headers={"Content-Type": "multipart/form-data; boundary=x"}, status=415),
    Case("put_text_xml", "PUT", S, j(put(2)), headers={"Content-Type": "text/xml"},
         status=415),
    Case("patch_application_xml", "PATCH", S, j({"k": "w"}),
         headers={"Content-Type": "application/xml"}, status=415),
    Case("types_multipart", "POST", T, j(type_spec(entity_type="M")),
         headers={"Content-Type": "multipart/form-data; boundary=y"}, status=415),
    # --- a length two readers could take two ways (issue 12)
    Case("content_length_twice", "POST", C, j(create(oid="m4")),
         headers=[("Content-Length", "2"), ("Content-Length", str(len(j(create(oid="m4")))))],
         msg="Content-Length"),
    Case("content_length_twice_patch", "PATCH", S, j({"k": "w"}),
         headers=[("Content-Length", str(len(j({"k": "w"})))), ("Content-Length", "1")],
         msg="Content-Length"),
    Case("content_length_and_chunked", "PUT", S, b"%x\r\n%s\r\n0\r\n\r\n" % (
        len(j(put(2))), j(put(2))), headers=[("Transfer-Encoding", "chunked"),
                                             ("Content-Length", "5")], msg="Content-Length"),
    # --- methods
    Case("delete_collection", "DELETE", C, status=405, allow=["GET", "POST"]),
    Case("put_collection", "PUT", C, {}, status=405, allow=["GET", "POST"]),
    Case("post_document", "POST", S, create(), status=405,
         allow=["GET", "PUT", "PATCH", "DELETE"]),
    Case("post_history", "POST", H, {}, status=405, allow=["GET"]),
    Case("delete_types", "DELETE", T, status=405, allow=["GET", "POST"]),
    Case("post_type", "POST", T + "/Typed", type_spec(entity_type="Typed"), status=405,
         allow=["GET", "PUT"]),
    # --- unknown paths
    Case("unknown_path", "GET", "/v1/nothing", status=404),
    Case("unknown_version", "GET", "/v2/entities/User", status=404),
    Case("unknown_sub_path", "GET", S + "/nope", status=404),
    Case("unknown_deep_path", "GET", H + "/x/y", status=404),
    # nesting: 512 levels at most in a body (the event store wraps documents
    # in a few levels more and stores up to 900)
    Case("deep_document", "POST", C, b'{"payload":{"d":' + b"[" * 600 + b"]" * 600 + b"}}",
         msg="at most 512"),
    Case("deep_document_put", "PUT", S,
         b'{"originator":{"version":2},"payload":' + b"[" * 2000 + b"]" * 2000 + b"}",
         msg="levels deep"),
    # --- not found, conflicts
    Case("get_missing", "GET", C + "/nobody", status=404),
    Case("put_missing", "PUT", C + "/nobody", put(1), status=404),
    Case("patch_missing", "PATCH", C + "/nobody", {"a": 1}, status=404),
    Case("delete_missing", "DELETE", C + "/nobody", status=404),
    # --- erase=true (SPEC §4): nothing is erased by these
    Case("erase_not_boolean", "DELETE", S + "?erase=maybe", msg="erase"),
    Case("erase_empty", "DELETE", S + "?erase=", msg="erase"),
    Case("erase_if_match_stale", "DELETE", S + "?erase=true", headers={"If-Match": '"1"'},
         status=409),
    Case("erase_if_match_garbage", "DELETE", S + "?erase=true", headers={"If-Match": '"two"'},
         msg="If-Match"),
    Case("erase_other_type", "DELETE", "/v1/entities/Other/seed?erase=true", status=404),
    Case("erase_missing", "DELETE", C + "/nobody?erase=true", status=404),
    Case("history_missing", "GET", C + "/nobody/history", status=404),
    Case("type_missing", "GET", T + "/Nobody", status=404),
    Case("type_put_missing", "PUT", T + "/Nobody",
         type_spec(entity_type="Nobody", schema_spec={"schema_version": 2,
                                                      "json_schema": {}}), status=404),
    Case("create_duplicate", "POST", C, create(oid="seed"), status=409),
    Case("put_stale", "PUT", S, put(1), status=409),
    Case("put_stale_if_match", "PUT", S, {"payload": {}}, headers={"If-Match": '"1"'},
         status=409),
    Case("put_future", "PUT", S, put(3), status=409),
    Case("patch_stale", "PATCH", S, {"k": "w"}, headers={"If-Match": '"1"'}, status=409),
    Case("delete_stale", "DELETE", S, headers={"If-Match": '"1"'}, status=409),
    Case("type_duplicate", "POST", T, type_spec(entity_type="Typed"), status=409),
    Case("type_put_same_version", "PUT", T + "/Typed",
         type_spec(entity_type="Typed", schema_spec={"schema_version": 1,
                                                     "json_schema": {}}), status=409),
    # --- _find (issue 14): the body, the selector (400 naming the path), paging, time travel
    Case("find_bad_json", "POST", F, b"{x", msg="JSON"),
    Case("find_empty_body", "POST", F, b"", msg="body"),
    Case("find_top_level_array", "POST", F, b"[]", msg="body"),
    Case("find_no_selector", "POST", F, {"limit": 3}, msg="selector"),
    Case("find_selector_array", "POST", F, {"selector": []}, msg="selector"),
    Case("find_selector_string", "POST", F, {"selector": "age"}, msg="selector"),
    Case("find_unknown_operator", "POST", F, find({"age": {"$foo": 1}}), msg="age",
         details={"path": "age"}),
    Case("find_gt_array", "POST", F, find({"age": {"$gt": [1]}}), msg="age"),
    Case("find_lte_object", "POST", F, find({"age": {"$lte": {"x": 1}}}), msg="age"),
    Case("find_in_not_array", "POST", F, find({"tags": {"$in": "vip"}}), msg="tags"),
    Case("find_in_nested_array", "POST", F, find({"tags": {"$in": [["vip"]]}}), msg="tags"),
    Case("find_nin_object", "POST", F, find({"tags": {"$nin": [{"a": 1}]}}), msg="tags"),
    Case("find_exists_string", "POST", F, find({"a.b": {"$exists": "yes"}}), msg="a.b",
         details={"path": "a.b"}),
    Case("find_eq_object", "POST", F, find({"a": {"$eq": {"x": 1}}}), msg="a"),
    Case("find_operators_and_members", "POST", F, find({"a": {"$eq": 1, "b": 2}}), msg="a"),
    Case("find_or_empty", "POST", F, find({"$or": []}), msg="$or"),
    Case("find_or_object", "POST", F, find({"$or": {"a": 1}}), msg="$or"),
    Case("find_and_item_number", "POST", F, find({"$and": [1]}), msg="$and[0]"),
    Case("find_nested_bad_operator", "POST", F, find({"$or": [{"x.y": {"$regex": "a"}}]}),
         msg="x.y", details={"path": "x.y"}),
    Case("find_top_level_unknown", "POST", F, find({"$where": "1"}), msg="$where"),
    Case("find_empty_segment", "POST", F, find({"a..b": 1}), msg="a..b"),
    Case("find_trailing_dot", "POST", F, find({"a.": 1}), msg="a."),
    Case("find_limit_zero", "POST", F, find({}, limit=0), msg="limit"),
    Case("find_limit_1001", "POST", F, find({}, limit=1001), msg="limit"),
    Case("find_limit_string", "POST", F, find({}, limit="5"), msg="limit"),
    Case("find_sort_object", "POST", F, find({}, sort={"a": "asc"}), msg="sort"),
    Case("find_sort_direction", "POST", F, find({}, sort=[{"a": "up"}]), msg="sort[0]"),
    Case("find_sort_two_members", "POST", F, find({}, sort=[{"a": "asc", "b": "asc"}]),
         msg="sort[0]"),
    Case("find_page_token_garbage", "POST", F, find({}, page_token="zzz"), msg="page_token"),
    Case("find_page_token_number", "POST", F, find({}, page_token=5), msg="page_token"),
    Case("find_skip_payload_string", "POST", F, find({}, skip_payload="yes"),
         msg="skip_payload"),
    Case("find_as_of_garbage", "POST", F, find({}, as_of="yesterday"), msg="as_of"),
    Case("find_as_of_log_id_negative", "POST", F, find({}, as_of_log_id=-1),
         msg="as_of_log_id"),
    Case("find_as_of_both", "POST", F, find({}, as_of="2026-01-01T00:00:00Z", as_of_log_id=1),
         msg="as_of"),
    Case("find_unknown_member", "POST", F, find({}, fields=["a"]), msg="fields"),
    Case("find_reserved_type", "POST", "/v1/entities/eskit.X/_find", find({}),
         msg="entity_type"),
    Case("get_version_and_as_of", "GET", q(S, version=1, as_of_log_id=1), msg="as_of"),
    Case("get_as_of_garbage", "GET", q(S, as_of="soon"), msg="as_of"),
    Case("list_as_of_log_id_word", "GET", q(C, as_of_log_id="x"), msg="as_of_log_id"),
    # --- _bulk (issue 14): nothing written, the failing operation in details.index
    Case("bulk_bad_json", "POST", B, b"{", msg="JSON"),
    Case("bulk_no_operations", "POST", B, {}, msg="operations"),
    Case("bulk_empty_operations", "POST", B, {"operations": []}, msg="operations"),
    Case("bulk_1001_operations", "POST", B,
         {"operations": [{"op": "create", "payload": {}}] * 1001}, msg="operations"),
    Case("bulk_operations_object", "POST", B, {"operations": {"op": "create"}},
         msg="operations"),
    Case("bulk_unknown_member", "POST", B, bulk({"op": "create", "payload": {}}, atomic=True),
         msg="operations"),
    Case("bulk_op_number", "POST", B, bulk(1), msg="operations[0]", details={"index": 0}),
    Case("bulk_op_unknown", "POST", B, bulk({"op": "upsert", "id": "m3", "payload": {}}),
         msg="op", details={"index": 0}),
    Case("bulk_op_missing", "POST", B, bulk({"id": "m3", "payload": {}}), msg="op"),
    Case("bulk_create_payload_array", "POST", B, bulk({"op": "create", "payload": [1]}),
         msg="payload", details={"index": 0}),
    Case("bulk_create_bad_id", "POST", B, bulk({"op": "create", "id": "a b", "payload": {}}),
         msg="id"),
    Case("bulk_create_with_version", "POST", B,
         bulk({"op": "create", "id": "m3", "version": 1, "payload": {}}), msg="version"),
    Case("bulk_put_no_version", "POST", B, bulk({"op": "put", "id": "seed", "payload": {}}),
         msg="version"),
    Case("bulk_put_version_string", "POST", B,
         bulk({"op": "put", "id": "seed", "version": "2", "payload": {}}), msg="version"),
    Case("bulk_patch_no_patch", "POST", B, bulk({"op": "patch", "id": "seed"}), msg="patch"),
    Case("bulk_patch_no_id", "POST", B, bulk({"op": "patch", "patch": {}}), msg="id"),
    Case("bulk_second_fails", "POST", B,
         bulk({"op": "create", "id": "m3", "payload": {}}, {"op": "create", "payload": "x"}),
         msg="operations[1]", details={"index": 1}),
    Case("bulk_schema_violation", "POST", "/v1/entities/Typed/_bulk",
         bulk({"op": "create", "id": "m4", "payload": {"email": "a@b"}},
              {"op": "create", "id": "m3", "payload": {"email": 5}}),
         details={"index": 1}),
    Case("bulk_patch_breaks_schema", "POST", "/v1/entities/Typed/_bulk",
         bulk({"op": "patch", "id": "typed-1", "patch": {"email": 7}}), details={"index": 0}),
    Case("bulk_reserved_type", "POST", "/v1/entities/eskit.X/_bulk",
         bulk({"op": "create", "payload": {}}), msg="entity_type"),
    Case("bulk_create_existing", "POST", B,
         bulk({"op": "create", "id": "m3", "payload": {}},
              {"op": "create", "id": "seed", "payload": {}}),
         status=409, details={"index": 1}),
    Case("bulk_put_stale", "POST", B, bulk({"op": "put", "id": "seed", "version": 1,
                                            "payload": {}}), status=409, details={"index": 0}),
    Case("bulk_delete_stale", "POST", B, bulk({"op": "delete", "id": "seed", "version": 1}),
         status=409, details={"index": 0}),
    Case("bulk_patch_missing", "POST", B, bulk({"op": "patch", "id": "nobody", "patch": {}}),
         status=404, details={"index": 0}),
    Case("bulk_delete_twice", "POST", B, bulk({"op": "delete", "id": "seed"},
                                              {"op": "delete", "id": "seed"}),
         status=404, details={"index": 1}),
]


def test_catalogue(crud):
    assert len(CASES) >= 35
    assert len({c.id for c in CASES}) == len(CASES)
    # the seed: User "seed" at version 2, the type Typed and one Typed document
    crud.create("User", {"k": "v"}, "seed")
    assert crud.c.put(S, {"originator": {"version": 1}, "payload": {"k": "v2"}}).status == 200
    r = crud.c.post(T, {"spec": {"entity_type": "Typed", "schema_spec": {
        "schema_version": 1, "json_schema": TYPED_SCHEMA}}})
    assert r.status == 201, r
    crud.create("Typed", {"email": "a@b"}, "typed-1")
    head = crud.head_id()
    seed = crud.read("User", "seed").json
    typed = crud.read("Typed", "typed-1").json

    failures = run_cases(crud.crud.url, CASES)

    # a request that fails changes nothing
    if crud.head_id() != head:
        failures.append(f"the event store's log head moved from {head} to {crud.head_id()}")
    if crud.read("User", "seed").json != seed:
        failures.append(f"seed changed: {crud.read('User', 'seed').json}")
    if crud.read("Typed", "typed-1").json != typed:
        failures.append("typed-1 changed")
    spec = crud.c.get(T + "/Typed").json
    if spec != {"spec": {"entity_type": "Typed", "schema_spec": {
            "schema_version": 1, "json_schema": TYPED_SCHEMA}}}:
        failures.append(f"type Typed changed: {spec}")
    for oid in ("m0", "m1", "m2", "m3", "m4", "a", "M"):
        if crud.events(oid):
            failures.append(f"stream {oid} was written")
    if crud.c.get(T + "/M").status != 404:
        failures.append("type M was registered")
    assert not failures, f"{len(failures)} of {len(CASES)} cases failed:\n" + "\n".join(
        failures)
    # still serving
    assert crud.c.get("/healthz").status == 200
    assert crud.c.post(C, {"payload": {"after": True}}).status == 201


def test_deep_documents(crud):
    """A document as deep as the CRUD store takes is created, updated and
    read back whole on both back ends (the event store holds it a few
    levels deeper)."""
    def doc(levels, leaf):
        return '{"d":' + "[" * (levels - 1) + leaf + "]" * (levels - 1) + "}"
    body = ('{"originator":{"id":"deep"},"payload":' + doc(511, "1") + "}").encode()
    r = catalogue.send(crud.crud.url, "POST", C, body)
    assert r.status == 201, r
    body = ('{"originator":{"version":1},"payload":' + doc(511, '"x"') + "}").encode()
    r = catalogue.send(crud.crud.url, "PUT", C + "/deep", body)
    assert r.status == 200, r
    r = catalogue.send(crud.crud.url, "GET", C + "/deep")  # raw: Python's json stops near 1000
    assert r.status == 200 and doc(511, '"x"') in r.body.replace(" ", ""), r.body[:200]
    r = catalogue.send(crud.crud.url, "GET", C + "/deep?version=1")
    assert r.status == 200 and doc(511, "1") in r.body.replace(" ", ""), r.body[:200]


def test_body_limit(backend, services):
    env = start_crud_env(backend, services, crud_extra_env={"ESKIT_MAX_BODY_BYTES": "1024"})
    env.create("User", {"k": "v"}, "seed")
    head = env.head_id()
    big = j({"payload": {"blob": "x" * 2000}, "originator": {"id": "big"}})
    cases = [
        Case("post_oversize", "POST", C, big, status=413),
        Case("put_oversize", "PUT", S, j({"originator": {"version": 1},
                                          "payload": {"blob": "x" * 2000}}), status=413),
        Case("patch_oversize", "PATCH", S, j({"blob": "x" * 2000}), status=413),
        Case("types_oversize", "POST", T, j(type_spec(entity_type="Big", schema_spec={
            "schema_version": 1, "json_schema": {"description": "x" * 2000}})), status=413),
        Case("post_oversize_1025", "POST", C,
             b'{"payload":{"b":"' + b"x" * (1025 - 20) + b'"}}', status=413),
    ]
    assert len(cases[-1].body) == 1025
    failures = run_cases(env.crud.url, cases)
    # the same, chunked
    r = send(env.crud.url, "POST", C, big, chunked=True)
    problems = check(cases[0], r)
    if problems:
        failures.append(f"post_oversize_chunked -> {r.status} {r.body[:200]!r}: {problems}")
    assert not failures, "\n".join(failures)
    assert env.head_id() == head
    assert env.events("big") == []
    # exactly the limit is fine
    ok = b'{"payload":{"b":"' + b"x" * (1024 - 20) + b'"}}'
    assert len(ok) == 1024
    r = send(env.crud.url, "POST", C, ok)
    assert r.status == 201, r


def test_bearer_token(backend, services):
    token = "s3cret-token"
    env = start_crud_env(backend, services, token=token)
    url = env.crud.url
    head = env.head_id()
    unauth = [
        Case("no_token_create", "POST", C, create(oid="t1"), status=401),
        Case("no_token_read", "GET", S, status=401),
        Case("no_token_list", "GET", C, status=401),
        Case("no_token_types", "POST", T, type_spec(entity_type="Tok"), status=401),
        Case("no_token_unknown", "GET", "/v1/nothing", status=401),
    ]
    failures = run_cases(url, unauth)
    wrong = [Case("wrong_token_create", "POST", C, create(oid="t1"), status=401),
             Case("wrong_token_delete", "DELETE", S, status=401)]
    failures += run_cases(url, wrong, token="wrong")
    basic = Case("basic_auth", "GET", C, status=401,
                 headers={"Authorization": "Basic dXNlcjpwYXNz"})
    failures += run_cases(url, [basic])
    assert not failures, "\n".join(failures)
    assert env.head_id() == head
    # health, readiness and metrics are never behind the token
    for p in ("/healthz", "/readyz", "/metrics"):
        r = send(url, "GET", p)
        assert r.status == 200, (p, r)
    # with the token, the CRUD store talks to the event store (with the token)
    r = send(url, "POST", C, j(create({"a": 1}, "t1")), token=token)
    assert r.status == 201, r
    r = send(url, "GET", C + "/t1", token=token)
    assert r.status == 200 and r.json["payload"] == {"a": 1}, r
    r = send(url, "POST", T, j(type_spec(entity_type="Tok")), token=token)
    assert r.status == 201, r
    r = send(url, "GET", T + "/Tok", token=token)
    assert r.status == 200, r
    assert len(env.events("t1")) == 1
