/*
 * crud_types.c - entity type specs stored as eskit.EntityType documents, and
 * the cache of their compiled JSON Schemas (see crud_types.h).
 *
 * The schema cache is a short list, most recently used first, of (type,
 * spec version, compiled schema or NULL for "no schema"). Entries are
 * reference counted so that a validation runs outside the lock while another
 * thread replaces or evicts the entry; the last holder frees it.
 */
#include "crud_types.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "crud_es.h"
#include "crud_indexes.h"
#include "crud_replay.h"
#include "jschema.h"
#include "jsonx.h"
#include "mpatch.h"

#define CRUD_TYPES_CACHE_MAX 256

typedef struct crud_schema {
    struct crud_schema *next;
    char *type;      /* owned */
    int64_t version; /* of the spec document */
    jschema *schema; /* owned; NULL: the type has no schema */
    int refs;        /* the list's own reference counts as one while listed */
} crud_schema;

struct crud_types {
    pthread_mutex_t mu;
    crud_schema *head;
    size_t n;
};

crud_types *crud_types_new(void)
{
    crud_types *t = calloc(1, sizeof *t);
    if (t)
        pthread_mutex_init(&t->mu, NULL);
    return t;
}

static void crud_schema_free(crud_schema *s)
{
    jschema_free(s->schema);
    free(s->type);
    free(s);
}

void crud_types_free(crud_types *t)
{
    if (!t)
        return;
    crud_schema *s = t->head;
    while (s) {
        crud_schema *next = s->next;
        crud_schema_free(s);
        s = next;
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* Drops one reference; under the lock. */
static void crud_schema_unref(crud_schema *s)
{
    if (--s->refs == 0)
        crud_schema_free(s);
}

/* A cached entry for (type, version) with a reference for the caller, or
 * NULL. */
static crud_schema *crud_schema_find(crud_types *t, const char *type, int64_t version)
{
    crud_schema *found = NULL;
    pthread_mutex_lock(&t->mu);
    for (crud_schema **p = &t->head; *p; p = &(*p)->next) {
        crud_schema *s = *p;
        if (s->version == version && strcmp(s->type, type) == 0) {
            *p = s->next; /* to the front */
            s->next = t->head;
            t->head = s;
            s->refs++;
            found = s;
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return found;
}

/* Lists a new entry (taking `schema`), replacing other versions of its type
 * and evicting the least recently used beyond the cap. Returns it with a
 * reference for the caller, or NULL on OOM (the schema is freed). */
static crud_schema *crud_schema_add(crud_types *t, const char *type, int64_t version,
                                    jschema *schema)
{
    crud_schema *s = calloc(1, sizeof *s);
    if (!s || !(s->type = strdup(type))) {
        free(s);
        jschema_free(schema);
        return NULL;
    }
    s->version = version;
    s->schema = schema;
    s->refs = 2; /* the list and the caller */
    pthread_mutex_lock(&t->mu);
    size_t kept = 0;
    for (crud_schema **p = &t->head; *p;) {
        crud_schema *o = *p;
        if (strcmp(o->type, type) == 0 || kept + 1 >= CRUD_TYPES_CACHE_MAX) {
            *p = o->next;
            t->n--;
            crud_schema_unref(o);
        } else {
            kept++;
            p = &o->next;
        }
    }
    s->next = t->head;
    t->head = s;
    t->n++;
    pthread_mutex_unlock(&t->mu);
    return s;
}

static void crud_schema_release(crud_types *t, crud_schema *s)
{
    pthread_mutex_lock(&t->mu);
    crud_schema_unref(s);
    pthread_mutex_unlock(&t->mu);
}

/* The spec document of `type`: *found false when not registered (no such
 * stream, a stream of another entity type, or no spec in it). On success
 * with *found, *spec is a new reference and *version its version. */
static bool crud_types_load(crud_app *app, const char *type, bool *found, json_t **spec,
                            int64_t *version, err *e)
{
    crud_doc doc = {0};
    bool exists = false;
    *found = false;
    *spec = NULL;
    if (strlen(type) > VALIDATE_ID_MAX)
        return true; /* cannot be a stream id, so never registered */
    if (!crud_replay_latest(app, type, CRUD_TYPES_ENTITY, &doc, &exists, e))
        return false;
    bool ok = true;
    if (exists && doc.exists && !doc.deleted) {
        *spec = crud_doc_json(&doc, e);
        ok = *spec != NULL;
        *found = ok;
        *version = doc.version;
    }
    crud_doc_free(&doc);
    return ok;
}

/* spec.schema_spec.schema_version, 0 when absent. */
static int64_t crud_types_schema_version(const json_t *spec)
{
    json_t *v = json_object_get(json_object_get(spec, "schema_spec"), "schema_version");
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

json_t *crud_types_parse_spec(const json_t *spec, const char *path_type,
                              int64_t *schema_version, err *e)
{
    const char *type = NULL;
    json_t *ss = NULL, *out = NULL, *oss = NULL;
    jschema *compiled = NULL;
    *schema_version = 0;

    if (!json_is_object(spec)) {
        err_set(e, ERR_INVALID_ARGUMENT, "spec must be an object");
        goto fail;
    }
    if (!jsonx_get_string(spec, "entity_type", "spec.entity_type", path_type == NULL, &type, e))
        goto fail;
    if (!type) {
        type = path_type;
    } else if (path_type && strcmp(type, path_type) != 0) {
        err_set(e, ERR_INVALID_ARGUMENT, "spec.entity_type must be the entity type of the path");
        goto fail;
    }
    if (!validate_entity_type(type)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "spec.entity_type must be segments of A-Z a-z 0-9 _ - joined by '.'");
        goto fail;
    }
    if (strncmp(type, CRUD_TYPES_RESERVED, strlen(CRUD_TYPES_RESERVED)) == 0) {
        err_set(e, ERR_INVALID_ARGUMENT, "spec.entity_type: entity types starting with 'eskit.' "
                                         "are reserved");
        goto fail;
    }
    if (strlen(type) > VALIDATE_ID_MAX) {
        err_set(e, ERR_INVALID_ARGUMENT, "spec.entity_type: a registered entity type has at "
                                         "most 128 characters");
        goto fail;
    }
    if (!jsonx_get_object(spec, "schema_spec", "spec.schema_spec", false, &ss, e))
        goto fail;
    out = json_pack("{s:s}", "entity_type", type);
    if (!out)
        goto oom;
    if (ss) {
        json_t *schema = json_object_get(ss, "json_schema");
        bool present = false;
        if (json_is_null(schema))
            schema = NULL;
        if (schema && !json_is_object(schema) && !json_is_boolean(schema)) {
            err_set(e, ERR_INVALID_ARGUMENT,
                    "spec.schema_spec.json_schema must be an object or a boolean");
            goto fail;
        }
        if (!jsonx_get_int(ss, "schema_version", "spec.schema_spec.schema_version",
                           schema != NULL, schema ? 1 : 0, INT64_MAX, schema_version, &present,
                           e))
            goto fail;
        if (schema) {
            err ce = ERR_INIT;
            compiled = jschema_compile(schema, &ce);
            if (!compiled) {
                if (ce.code == ERR_INVALID_ARGUMENT)
                    err_set(e, ERR_INVALID_ARGUMENT,
                            "spec.schema_spec.json_schema is not a valid draft-07 schema: %s",
                            ce.message);
                else
                    err_move(e, &ce);
                err_clear(&ce);
                goto fail;
            }
            jschema_free(compiled);
        }
        oss = json_object();
        if (!oss || (present && json_object_set_new(oss, "schema_version",
                                                    json_integer(*schema_version))) ||
            (schema && json_object_set(oss, "json_schema", schema)) ||
            json_object_set_new(out, "schema_spec", oss))
            goto oom;
    }
    if (!crud_indexes_parse(spec, out, e)) /* declared query indexes */
        goto fail;
    return out;
oom:
    err_set(e, ERR_INTERNAL, "out of memory");
fail:
    json_decref(out);
    return NULL;
}

bool crud_types_check(crud_app *app, const char *type, const json_t *doc, err *e)
{
    crud_doc sd = {0};
    bool exists = false;
    json_t *spec = NULL, *errors = NULL;
    crud_schema *s = NULL;
    bool ok = false;

    if (strlen(type) > VALIDATE_ID_MAX)
        return true;
    if (!crud_replay_latest(app, type, CRUD_TYPES_ENTITY, &sd, &exists, e))
        return false;
    if (!exists) {
        crud_doc_free(&sd);
        return true;
    }
    s = crud_schema_find(app->types, type, sd.version);
    if (!s) {
        jschema *compiled = NULL;
        if (sd.exists && !sd.deleted && !(spec = crud_doc_json(&sd, e)))
            goto done;
        json_t *js = json_object_get(json_object_get(spec, "schema_spec"), "json_schema");
        if (js) {
            compiled = jschema_compile(js, e);
            if (!compiled) {
                err_set(e, ERR_INTERNAL, "the registered schema of %s does not compile", type);
                goto done;
            }
        }
        s = crud_schema_add(app->types, type, sd.version, compiled);
        if (!s) {
            err_set(e, ERR_INTERNAL, "out of memory");
            goto done;
        }
    }
    if (!s->schema || jschema_validate(s->schema, doc, &errors)) {
        ok = true;
        goto done;
    }
    if (!errors) {
        err_set(e, ERR_INTERNAL, "out of memory validating a document");
        goto done;
    }
    json_t *first = json_array_get(errors, 0);
    const char *path = json_string_value(json_object_get(first, "path"));
    const char *msg = json_string_value(json_object_get(first, "message"));
    err_set_details(e, ERR_INVALID_ARGUMENT, json_pack("{s:o}", "errors", errors),
                    "payload does not match the JSON Schema of %s: %s%s%s", type,
                    path && *path ? path : "", path && *path ? ": " : "", msg ? msg : "invalid");
    errors = NULL; /* taken by the details */
done:
    if (s)
        crud_schema_release(app->types, s);
    crud_doc_free(&sd);
    json_decref(spec);
    json_decref(errors);
    return ok;
}

json_t *crud_types_get(crud_app *app, const char *type, err *e)
{
    bool found = false;
    json_t *spec = NULL;
    int64_t version = 0;
    if (!crud_types_load(app, type, &found, &spec, &version, e))
        return NULL;
    if (!found)
        err_set(e, ERR_NOT_FOUND, "entity type %s is not registered", type);
    return spec;
}

json_t *crud_types_create(crud_app *app, const json_t *spec, bool skip_duplicate,
                          bool *created, err *e)
{
    const char *type = json_string_value(json_object_get(spec, "entity_type"));
    char et[CRUD_EVENT_TYPE_MAX];
    err ae = ERR_INIT;
    *created = false;
    if (!type || !crud_event_type(et, CRUD_TYPES_ENTITY, "Created")) {
        err_set(e, ERR_INTERNAL, "a spec without entity_type");
        return NULL;
    }
    crud_cache_mark m = crud_cache_mark_now(app->cache);
    if (crud_es_append(app->es, type, et, 1, spec, &ae)) {
        crud_replay_remember(app, type, CRUD_TYPES_ENTITY, 1, false, spec, &m);
        *created = true;
        return json_incref((json_t *)spec);
    }
    if (ae.code != ERR_CONFLICT) {
        err_move(e, &ae);
        return NULL;
    }
    err_clear(&ae);
    /* the stream exists: a registration, or a document of another type */
    bool found = false;
    json_t *existing = NULL;
    int64_t version = 0;
    if (!crud_types_load(app, type, &found, &existing, &version, e))
        return NULL;
    if (found && skip_duplicate)
        return existing;
    json_decref(existing);
    if (found)
        err_set(e, ERR_CONFLICT, "entity type %s is already registered", type);
    else
        err_set(e, ERR_CONFLICT, "entity type %s cannot be registered: the event store already "
                                 "has a stream with this id", type);
    return NULL;
}

json_t *crud_types_replace(crud_app *app, const char *type, const json_t *spec,
                           int64_t schema_version, err *e)
{
    crud_doc doc = {0};
    bool exists = false;
    json_t *old = NULL, *patch = NULL, *next = NULL, *out = NULL;
    char et[CRUD_EVENT_TYPE_MAX];

    if (strlen(type) > VALIDATE_ID_MAX) {
        err_set(e, ERR_NOT_FOUND, "entity type %s is not registered", type);
        goto done;
    }
    if (!crud_replay_latest(app, type, CRUD_TYPES_ENTITY, &doc, &exists, e))
        goto done;
    if (!exists || !doc.exists || doc.deleted) {
        err_set(e, ERR_NOT_FOUND, "entity type %s is not registered", type);
        goto done;
    }
    if (!(old = crud_doc_json(&doc, e)))
        goto done;
    int64_t current = crud_types_schema_version(old);
    if (schema_version <= current) {
        err_set_details(e, ERR_CONFLICT, json_pack("{s:I}", "current_schema_version",
                                                   (json_int_t)current),
                        "schema_version must be above the registered %lld, got %lld",
                        (long long)current, (long long)schema_version);
        goto done;
    }
    patch = mpatch_create(old, spec);
    next = patch ? mpatch_apply(old, patch) : NULL;
    if (!next || !crud_event_type(et, CRUD_TYPES_ENTITY, "Updated")) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto done;
    }
    if (!json_equal(next, spec)) {
        /* A merge patch cannot set a member to null ("const": null in a
         * schema): such a spec is written whole, as a new Created event,
         * which the replay takes as the document. */
        json_decref(patch);
        json_decref(next);
        patch = json_incref((json_t *)spec);
        next = json_incref((json_t *)spec);
        if (!crud_event_type(et, CRUD_TYPES_ENTITY, "Created")) {
            err_set(e, ERR_INTERNAL, "event type too long");
            goto done;
        }
    }
    crud_cache_mark m = crud_cache_mark_now(app->cache);
    if (!crud_es_append(app->es, type, et, doc.version + 1, patch, e)) {
        if (e->code == ERR_CONFLICT)
            err_set(e, ERR_CONFLICT, "entity type %s was changed concurrently; retry", type);
        goto done;
    }
    crud_replay_remember(app, type, CRUD_TYPES_ENTITY, doc.version + 1, false, next, &m);
    out = json_incref(next);
done:
    crud_doc_free(&doc);
    json_decref(old);
    json_decref(patch);
    json_decref(next);
    return out;
}

json_t *crud_types_list(crud_app *app, int64_t limit, err *e)
{
    json_t *page = NULL, *out = json_array();
    if (!out) {
        err_set(e, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    if (!crud_es_list_streams(app->es, CRUD_TYPES_ENTITY, 0, limit, false, &page, e))
        goto fail;
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(page, "streams"), i, s) {
        const char *id = json_string_value(json_object_get(s, "id"));
        json_t *v = json_object_get(s, "version");
        crud_doc doc = {0};
        if (!id || !json_is_integer(v)) {
            err_set(e, ERR_INTERNAL, "the event store listed a stream without id or version");
            goto fail;
        }
        if (!crud_replay_at(app, id, CRUD_TYPES_ENTITY, json_integer_value(v), NULL, &doc, e))
            goto fail;
        json_t *spec = doc.exists && !doc.deleted ? crud_doc_json(&doc, e) : NULL;
        bool bad = doc.exists && !doc.deleted && !spec;
        crud_doc_free(&doc);
        if (bad || (spec && json_array_append_new(out, spec)))
            goto fail;
    }
    json_decref(page);
    return out;
fail:
    if (e->code == ERR_NONE)
        err_set(e, ERR_INTERNAL, "out of memory");
    json_decref(page);
    json_decref(out);
    return NULL;
}
