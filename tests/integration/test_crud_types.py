"""The CRUD store's entity type registry and JSON Schema validation (SPEC §4,
"Entity types and their JSON Schemas"), black-box, on both back ends."""
import json

import pytest

from crud_fixtures import assert_error


@pytest.fixture
def crud(crud_store):
    """The conftest's crud_store (an event store and a CRUD store, per back end)."""
    return crud_store


T = "/v1/types"
U = "/v1/entities/User"

USER_SCHEMA = {
    "type": "object",
    "properties": {
        "email": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"$ref": "#/definitions/address"},
    },
    "required": ["email"],
    "definitions": {
        "address": {"type": "object",
                    "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}},
    },
}


def spec(etype, schema=None, version=1):
    s = {"entity_type": etype}
    if schema is not None:
        s["schema_spec"] = {"schema_version": version, "json_schema": schema}
    return s


def register(crud, s, skip_duplicate=None):
    body = {"spec": s}
    if skip_duplicate is not None:
        body["skip_duplicate"] = skip_duplicate
    return crud.c.post(T, body)


def schema_errors(r):
    """The details.errors of a 400 schema failure, checked for shape."""
    err = assert_error(r, 400)
    errors = err.get("details", {}).get("errors")
    assert isinstance(errors, list) and errors, r
    for e in errors:
        assert isinstance(e, dict) and isinstance(e.get("path"), str), r
        assert isinstance(e.get("message"), str) and e["message"], r
        assert e["path"] == "" or e["path"].startswith("/"), r   # a JSON Pointer
    return errors


def paths(r):
    return {e["path"] for e in schema_errors(r)}


def same_spec(got, want):
    """got (from the store) is the spec want; a spec registered without a
    schema_spec may come back with it absent, null or {}."""
    if "schema_spec" in want:
        return got == want
    return got.get("entity_type") == want["entity_type"] and not got.get("schema_spec") \
        and set(got) <= {"entity_type", "schema_spec"}


# --------------------------------------------------------------------------
# registration

def test_register_get_and_duplicates(crud):
    s = spec("User", USER_SCHEMA)
    r = register(crud, s)
    assert r.status == 201, r
    assert r.header("Content-Type").startswith("application/json")
    g = crud.c.get(f"{T}/User")
    assert g.status == 200, g
    assert g.json == {"spec": s}
    # stored in the event store as a document of eskit.EntityType, id = the type
    evs = crud.events("User")
    assert evs and evs[0]["event_type"] == "eskit.EntityType.Created", evs
    head = crud.head_id()
    # an existing type: 409; with skip_duplicate: 200, and the spec is unchanged
    other = spec("User", {"type": "object"}, 7)
    assert_error(register(crud, other), 409)
    assert_error(register(crud, s, skip_duplicate=False), 409)
    r = register(crud, other, skip_duplicate=True)
    assert r.status == 200, r
    assert crud.c.get(f"{T}/User").json == {"spec": s}
    assert crud.head_id() == head
    # not registered
    assert_error(crud.c.get(f"{T}/Nope"), 404)
    # skip_duplicate on a new type registers it
    r = register(crud, spec("Fresh"), skip_duplicate=True)
    assert r.status == 201, r
    assert crud.c.get(f"{T}/Fresh").json["spec"]["entity_type"] == "Fresh"


def test_schema_spec_is_optional(crud):
    r = register(crud, {"entity_type": "com.acme.billing.Invoice"})
    assert r.status == 201, r
    g = crud.c.get(f"{T}/com.acme.billing.Invoice")
    assert g.status == 200 and set(g.json) == {"spec"}, g
    assert same_spec(g.json["spec"], {"entity_type": "com.acme.billing.Invoice"}), g
    # a registered type without a schema accepts any document
    r = crud.c.post("/v1/entities/com.acme.billing.Invoice", {"payload": {"any": [1, "x"]}})
    assert r.status == 201, r
    # a schema_spec with a version but no json_schema is fine too
    r = register(crud, {"entity_type": "Versioned", "schema_spec": {"schema_version": 3}})
    assert r.status == 201, r


@pytest.mark.parametrize("name,schema_spec,mentions", [
    ("no_version", {"json_schema": {"type": "object"}}, "schema_version"),
    ("version_0", {"schema_version": 0, "json_schema": {"type": "object"}}, "schema_version"),
    ("version_neg", {"schema_version": -1, "json_schema": {"type": "object"}},
     "schema_version"),
    ("version_string", {"schema_version": "1", "json_schema": {"type": "object"}},
     "schema_version"),
    ("type_number", {"schema_version": 1, "json_schema": {"type": 5}}, None),
    ("type_unknown", {"schema_version": 1, "json_schema": {"type": "strin"}}, None),
    ("min_length_neg", {"schema_version": 1, "json_schema": {"minLength": -1}}, None),
    ("max_items_real", {"schema_version": 1, "json_schema": {"maxItems": 1.5}}, None),
    ("bad_pattern", {"schema_version": 1, "json_schema": {"pattern": "("}}, None),
    ("bad_nested_pattern", {"schema_version": 1, "json_schema": {
        "properties": {"a": {"type": "string", "pattern": "[a-"}}}}, None),
    ("bad_pattern_properties", {"schema_version": 1, "json_schema": {
        "patternProperties": {"(": {}}}}, None),
    ("required_string", {"schema_version": 1, "json_schema": {"required": "email"}}, None),
    ("properties_array", {"schema_version": 1, "json_schema": {"properties": []}}, None),
    ("property_schema_number", {"schema_version": 1, "json_schema": {
        "properties": {"a": 5}}}, None),
    ("enum_string", {"schema_version": 1, "json_schema": {"enum": "x"}}, None),
    ("items_number", {"schema_version": 1, "json_schema": {"items": 5}}, None),
    ("all_of_empty_object", {"schema_version": 1, "json_schema": {"allOf": {}}}, None),
    ("all_of_empty_array", {"schema_version": 1, "json_schema": {"allOf": []}}, None),
    ("additional_properties_string", {"schema_version": 1, "json_schema": {
        "additionalProperties": "no"}}, None),
    ("multiple_of_zero", {"schema_version": 1, "json_schema": {"multipleOf": 0}}, None),
    ("ref_number", {"schema_version": 1, "json_schema": {"$ref": 5}}, None),
    ("remote_ref", {"schema_version": 1, "json_schema": {"$ref": "http://example.com/s.json"}},
     None),
    ("remote_ref_nested", {"schema_version": 1, "json_schema": {
        "properties": {"a": {"$ref": "https://example.com/a.json#/definitions/x"}}}}, None),
    ("json_schema_string", {"schema_version": 1, "json_schema": "object"}, "json_schema"),
    ("json_schema_number", {"schema_version": 1, "json_schema": 5}, "json_schema"),
    ("json_schema_array", {"schema_version": 1, "json_schema": [{"type": "object"}]},
     "json_schema"),
    ("schema_spec_string", "v1", "schema_spec"),
])
def test_register_refuses_bad_schema_specs(crud, name, schema_spec, mentions):
    head = crud.head_id()
    r = register(crud, {"entity_type": "Bad", "schema_spec": schema_spec})
    assert_error(r, 400, mentions)
    assert_error(crud.c.get(f"{T}/Bad"), 404)
    assert crud.head_id() == head
    # nothing registered: documents of the type are not validated
    assert crud.c.post("/v1/entities/Bad", {"payload": {"anything": 1}}).status == 201


def test_register_accepts_valid_draft07_schemas(crud):
    schemas = {
        "BoolSub": {"properties": {"never": False, "any": True}},
        "Local": {"$id": "http://example.com/root.json", "definitions": {"a": {"type": "integer"}},
                  "properties": {"a": {"$ref": "#/definitions/a"}}},
        "Empty": {},
        "Pointer": {"definitions": {"x~y": {"type": "string"}, "p%q": {"type": "string"}},
                    "properties": {"a": {"$ref": "#/definitions/x~0y"},
                                   "b": {"$ref": "#/definitions/p%25q"}}},
        "Recursive": {"type": "object", "properties": {"child": {"$ref": "#"}}},
    }
    for etype, schema in schemas.items():
        r = register(crud, spec(etype, schema))
        assert r.status == 201, (etype, r)
    assert paths(crud.c.post("/v1/entities/BoolSub", {"payload": {"never": 1}})) == {"/never"}
    assert crud.c.post("/v1/entities/BoolSub", {"payload": {"any": 1}}).status == 201
    assert paths(crud.c.post("/v1/entities/Local", {"payload": {"a": "x"}})) == {"/a"}
    assert crud.c.post("/v1/entities/Local", {"payload": {"a": 1}}).status == 201
    assert paths(crud.c.post("/v1/entities/Pointer", {"payload": {"a": 1}})) == {"/a"}
    assert paths(crud.c.post("/v1/entities/Pointer", {"payload": {"b": 1}})) == {"/b"}
    assert crud.c.post("/v1/entities/Pointer", {"payload": {"a": "1", "b": "2"}}).status == 201
    assert paths(crud.c.post("/v1/entities/Recursive",
                             {"payload": {"child": {"child": 5}}})) == {"/child/child"}
    assert crud.c.post("/v1/entities/Recursive",
                       {"payload": {"child": {"child": {}}}}).status == 201


# --------------------------------------------------------------------------
# replacing and listing

def test_put_type(crud):
    s1 = spec("User", USER_SCHEMA, 1)
    assert register(crud, s1).status == 201
    # not registered
    assert_error(crud.c.put(f"{T}/Nope", {"spec": spec("Nope", {"type": "object"}, 2)}), 404)
    head = crud.head_id()
    # a schema_version not above the current one: 409
    same = spec("User", {"type": "object", "required": ["name"]}, 1)
    assert_error(crud.c.put(f"{T}/User", {"spec": same}), 409)
    assert crud.c.get(f"{T}/User").json == {"spec": s1}
    assert crud.head_id() == head
    # replaced
    s2 = spec("User", {"type": "object", "required": ["name"],
                       "properties": {"name": {"type": "string"}}}, 2)
    r = crud.c.put(f"{T}/User", {"spec": s2})
    assert 200 <= r.status < 300, r
    assert crud.c.get(f"{T}/User").json == {"spec": s2}
    assert_error(crud.c.put(f"{T}/User", {"spec": s2}), 409)
    assert_error(crud.c.put(f"{T}/User", {"spec": spec("User", {}, 1)}), 409)
    # invalid schema in a PUT: 400, nothing changed
    assert_error(crud.c.put(f"{T}/User", {"spec": spec("User", {"type": 5}, 3)}), 400)
    assert_error(crud.c.put(f"{T}/User", {"spec": spec(
        "User", {"$ref": "http://example.com/s.json"}, 3)}), 400)
    assert crud.c.get(f"{T}/User").json == {"spec": s2}
    # the new schema is the one validated against
    r = crud.c.post(U, {"payload": {"email": "a@b"}})
    assert "" in paths(r) or "/name" in paths(r), r
    assert crud.c.post(U, {"payload": {"name": "ada", "email": 5}}).status == 201
    # a type without a schema gets one with version 1
    assert register(crud, spec("Free")).status == 201
    r = crud.c.put(f"{T}/Free", {"spec": spec("Free", {"type": "object", "maxProperties": 1}, 1)})
    assert 200 <= r.status < 300, r
    assert paths(crud.c.post("/v1/entities/Free", {"payload": {"a": 1, "b": 2}})) == {""}


def test_list_types(crud):
    assert crud.c.get(T).json == {"results": []}
    specs = [spec(f"T{i:02d}", {"type": "object"}, i + 1) if i % 2 else spec(f"T{i:02d}")
             for i in range(23)]
    for s in specs:
        assert register(crud, s).status == 201
    r = crud.c.get(T)
    assert r.status == 200, r
    assert set(r.json) == {"results"}
    res = r.json["results"]
    assert len(res) == 20                                  # the default limit
    by_type = {s["entity_type"]: s for s in specs}
    for s in res:
        assert same_spec(s, by_type[s["entity_type"]]), s
    assert len({s["entity_type"] for s in res}) == 20
    r = crud.c.get(T, params={"limit": 1000})
    assert sorted(s["entity_type"] for s in r.json["results"]) == sorted(by_type)
    assert len(crud.c.get(T, params={"limit": 5}).json["results"]) == 5
    assert len(crud.c.get(T, params={"limit": 1}).json["results"]) == 1
    assert_error(crud.c.get(T, params={"limit": 0}), 400, "limit")
    assert_error(crud.c.get(T, params={"limit": 1001}), 400, "limit")
    # registered types are not CRUD documents of any user-visible type
    assert crud.c.get("/v1/entities/T01").json["results"] == []


# --------------------------------------------------------------------------
# validation of documents

def test_create_validated(crud):
    assert register(crud, spec("User", USER_SCHEMA)).status == 201
    head = crud.head_id()
    cases = [
        ({"email": 5}, {"/email"}),
        ({"email": "a@b", "age": -1}, {"/age"}),
        ({"email": "a@b", "age": 1.5}, {"/age"}),
        ({"email": "a@b", "tags": ["a", 5]}, {"/tags/1"}),
        ({"email": "a@b", "address": {"zip": "abc"}}, {"/address/zip"}),   # $ref
        ({"email": "a@b", "address": []}, {"/address"}),
        ({"email": 5, "age": "x"}, {"/email", "/age"}),                    # every failure
    ]
    for i, (doc, want) in enumerate(cases):
        r = crud.c.post(U, {"payload": doc, "originator": {"id": f"bad{i}"}})
        assert paths(r) == want, (doc, r)
    # a missing required member: the failure is at the object or at the member
    r = crud.c.post(U, {"payload": {"age": 3}, "originator": {"id": "bad-req"}})
    assert paths(r) <= {"", "/email"}, r
    # nothing written
    assert crud.head_id() == head
    for i in range(len(cases)):
        assert crud.events(f"bad{i}") == []
        assert_error(crud.read("User", f"bad{i}"), 404)
    assert crud.c.get(U).json["results"] == []
    # a valid document passes (age 1.0 is an integer in draft-07)
    ok = {"email": "a@b", "age": 1.0, "tags": ["x"], "address": {"zip": "12345"}}
    r = crud.c.post(U, {"payload": ok, "originator": {"id": "good"}})
    assert r.status == 201, r


def test_put_and_patch_validated(crud):
    assert register(crud, spec("User", USER_SCHEMA)).status == 201
    oid = crud.create("User", {"email": "a@b", "age": 3}, "v")
    head = crud.head_id()
    r = crud.c.put(f"{U}/v", {"originator": {"version": 1}, "payload": {"email": 5}})
    assert paths(r) == {"/email"}, r
    r = crud.c.put(f"{U}/v", {"payload": {"email": "a@b", "tags": [1]}},
                   headers={"If-Match": '"1"'})
    assert paths(r) == {"/tags/0"}, r
    r = crud.c.put(f"{U}/v", {"originator": {"version": 1}, "payload": {"age": 3}})
    assert paths(r) <= {"", "/email"}, r
    # a PATCH is validated on the document it makes
    r = crud.c.patch(f"{U}/v", {"age": "old"})
    assert paths(r) == {"/age"}, r
    r = crud.c.patch(f"{U}/v", {"email": None})
    assert paths(r) <= {"", "/email"}, r
    r = crud.c.patch(f"{U}/v", {"address": {"zip": "1"}}, headers={"If-Match": '"1"'})
    assert paths(r) == {"/address/zip"}, r
    assert crud.head_id() == head
    assert len(crud.events(oid)) == 1
    r = crud.read("User", oid)
    assert r.json["originator"]["version"] == 1 and r.json["payload"] == {"email": "a@b",
                                                                           "age": 3}
    # valid changes pass: the patch alone lacks `email`, the document has it
    r = crud.c.patch(f"{U}/v", {"age": 4})
    assert r.status == 200 and r.json["payload"] == {"email": "a@b", "age": 4}, r
    r = crud.c.put(f"{U}/v", {"originator": {"version": 2}, "payload": {"email": "c@d"}})
    assert r.status == 200, r


def test_registry_shared_by_replicas(crud, services):
    """Types live in the event store: a type registered or replaced through
    one CRUD store is enforced at once by another on the same event store."""
    other = services("crud-store", {"ESKIT_EVENT_STORE_URL": crud.es.url})
    assert other.wait_ready(), other.log()
    c2 = other.client()
    # the second replica has seen the type unregistered (and may cache that)
    assert c2.post(U, {"payload": {"email": 5}}).status == 201
    assert_error(c2.get(f"{T}/User"), 404)
    assert register(crud, spec("User", USER_SCHEMA)).status == 201
    assert c2.get(f"{T}/User").json == {"spec": spec("User", USER_SCHEMA)}
    assert paths(c2.post(U, {"payload": {"email": 5}})) == {"/email"}
    assert_error(register(crud, spec("User")), 409)
    assert_error(c2.post(T, {"spec": spec("User")}), 409)
    oid = c2.post(U, {"payload": {"email": "a@b"}}).json["originator"]["id"]
    s2 = spec("User", {"type": "object", "required": ["name"]}, 2)
    r = c2.put(f"{T}/User", {"spec": s2})
    assert 200 <= r.status < 300, r
    assert crud.c.get(f"{T}/User").json == {"spec": s2}
    assert paths(crud.c.post(U, {"payload": {"email": "a@b"}})) <= {"", "/name"}
    r = crud.c.patch(f"{U}/{oid}", {"age": 1})
    assert paths(r) <= {"", "/name"}, r
    assert_error(crud.c.put(f"{T}/User", {"spec": s2}), 409)


def test_unregistered_types_not_validated(crud):
    assert register(crud, spec("User", USER_SCHEMA)).status == 201
    for etype in ("Account", "user", "User.Sub", "com.acme.User"):
        r = crud.c.post(f"/v1/entities/{etype}", {"payload": {"email": 5}})
        assert r.status == 201, (etype, r)
        oid = r.json["originator"]["id"]
        r = crud.c.put(f"/v1/entities/{etype}/{oid}", {"originator": {"version": 1},
                                                        "payload": {"age": "x"}})
        assert r.status == 200, (etype, r)


# One property per draft-07 keyword: (subschema, a valid value, an invalid
# value). A document {keyword: value} must pass or fail, the failure located
# at /keyword or below.
KEYWORDS = {
    "type": ({"type": ["integer", "null"]}, 2.0, 2.5),
    "type_string": ({"type": "string"}, "x", 1),
    "enum": ({"enum": [1, "a", [1], {"k": None}]}, {"k": None}, [2]),
    "enum_numbers": ({"enum": [1]}, 1.0, True),
    "const": ({"const": {"a": [1, 2]}}, {"a": [1, 2]}, {"a": [2, 1]}),
    "multipleOf": ({"multipleOf": 1.5}, 4.5, 4),
    "maximum": ({"maximum": 3}, 3, 3.5),
    "exclusiveMaximum": ({"exclusiveMaximum": 3}, 2.9, 3),
    "minimum": ({"minimum": 1.1}, 1.1, 1),
    "exclusiveMinimum": ({"exclusiveMinimum": 1}, 1.5, 1),
    "maxLength": ({"maxLength": 2}, "\U0001F600\u00e9", "abc"),
    "minLength": ({"minLength": 2}, "\U0001F600\u00e9", "\U0001F600"),
    "pattern": ({"pattern": "^a+b$"}, "aab", "abc"),
    "pattern_unanchored": ({"pattern": "b"}, "abc", "xyz"),
    "items": ({"items": {"type": "integer"}}, [1, 2], [1, "x"]),
    "items_tuple": ({"items": [{"type": "integer"}, {"type": "string"}]}, [1, "a", None],
                    ["a", 1]),
    "additionalItems": ({"items": [{}], "additionalItems": {"type": "integer"}}, [None, 2],
                        [None, "x"]),
    "maxItems": ({"maxItems": 2}, [1, 2], [1, 2, 3]),
    "minItems": ({"minItems": 1}, [1], []),
    "uniqueItems": ({"uniqueItems": True}, [1, "1", [1]], [{"a": 1, "b": 2}, {"b": 2, "a": 1}]),
    "contains": ({"contains": {"const": 5}}, [1, 5], [1, 2]),
    "maxProperties": ({"maxProperties": 1}, {"a": 1}, {"a": 1, "b": 2}),
    "minProperties": ({"minProperties": 1}, {"a": 1}, {}),
    "required": ({"required": ["a"]}, {"a": None}, {"b": 1}),
    "properties": ({"properties": {"a": {"type": "string"}}}, {"a": "x", "b": 1}, {"a": 1}),
    "patternProperties": ({"patternProperties": {"^x_": {"type": "integer"}}}, {"x_a": 1, "y": "s"},
                          {"x_a": "s"}),
    "additionalProperties": ({"properties": {"a": {}}, "patternProperties": {"^p": {}},
                              "additionalProperties": False}, {"a": 1, "pq": 2}, {"a": 1, "b": 2}),
    "dependencies_array": ({"dependencies": {"a": ["b"]}}, {"a": 1, "b": 2}, {"a": 1}),
    "dependencies_schema": ({"dependencies": {"a": {"required": ["c"]}}}, {"a": 1, "c": 1},
                            {"a": 1, "b": 1}),
    "propertyNames": ({"propertyNames": {"maxLength": 2}}, {"ab": 1}, {"abc": 1}),
    "if_then_else": ({"if": {"type": "integer"}, "then": {"minimum": 10},
                      "else": {"type": "string"}}, 11, 5),
    "if_else": ({"if": {"type": "integer"}, "then": {"minimum": 10},
                 "else": {"type": "string"}}, "s", [1]),
    "allOf": ({"allOf": [{"type": "integer"}, {"minimum": 2}]}, 2, 1),
    "anyOf": ({"anyOf": [{"type": "string"}, {"minimum": 2}]}, "x", 1),
    "oneOf": ({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, 1, 3),
    "not": ({"not": {"type": "integer"}}, "x", 1),
    "ref": ({"$ref": "#/definitions/pos"}, 1, -1),
    "boolean_false": (False, None, 1),
}


def test_draft07_keywords(crud):
    props = {k: v[0] for k, v in KEYWORDS.items()}
    schema = {"type": "object", "properties": props,
              "definitions": {"pos": {"type": "integer", "minimum": 0}}}
    assert register(crud, spec("K", schema)).status == 201
    failures = []
    for k, (_, good, bad) in KEYWORDS.items():
        if k != "boolean_false":
            r = crud.c.post("/v1/entities/K", {"payload": {k: good}})
            if r.status != 201:
                failures.append(f"{k}: valid {json.dumps(good)} -> {r.status} {r.body[:200]}")
        r = crud.c.post("/v1/entities/K", {"payload": {k: bad}})
        if r.status != 400:
            failures.append(f"{k}: invalid {json.dumps(bad)} -> {r.status} {r.body[:200]}")
            continue
        errs = (r.json or {}).get("error", {}).get("details", {}).get("errors") or []
        ps = [e.get("path") for e in errs]
        if not ps or not all(p == f"/{k}" or p.startswith(f"/{k}/") for p in ps):
            failures.append(f"{k}: invalid {json.dumps(bad)} -> paths {ps}")
    assert not failures, "\n".join(failures)
    # a pointer escapes ~ and / in member names
    assert register(crud, spec("Esc", {"properties": {"a/b": {"type": "string"},
                                                      "c~d": {"type": "string"}}})).status == 201
    r = crud.c.post("/v1/entities/Esc", {"payload": {"a/b": 1, "c~d": 2}})
    assert paths(r) == {"/a~1b", "/c~0d"}, r
