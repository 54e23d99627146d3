/*
 * crud_index_apply.c - one page of the log applied to the query index, in
 * one transaction and two round trips (PostgreSQL pipelines; SQLite runs
 * the same steps one by one):
 *
 *   1. BEGIN, the compare-and-set of the offset, and the current row of
 *      every document the page touches;
 *   2. in memory, each entry in log order against the documents' states
 *      (T.Created: the whole document; T.Updated: its merge patch; T.Deleted:
 *      a deleted row; T.Erased, the stream's erasure: every row of the
 *      document deleted; anything else, or another type than the document's:
 *      skipped, as the replay skips it), giving a close of the old row and an
 *      insert of the new one per applied entry;
 *   3. those writes and COMMIT.
 *
 * When the compare-and-set finds the offset moved (another replica applied
 * the page), the transaction is rolled back and nothing is written.
 */
#include <stdlib.h>
#include <string.h>

#include "crud_index_int.h"
#include "crud_types.h"
#include "jsonx.h"
#include "mpatch.h"
#include "timefmt.h"
#include "validate.h"

/* One document as the page leaves it so far. */
typedef struct ix_doc {
    const char *id; /* borrowed from the page */
    bool found;     /* it has a current row */
    char type[VALIDATE_TYPE_MAX + 1];
    int64_t created;
    bool deleted;
    json_t *payload; /* owned */
} ix_doc;

/* One entry of the page the index applies. */
typedef struct ix_entry {
    int64_t log_id, version, recorded;
    const char *name; /* Created, Updated, Deleted or Erased */
    char type[VALIDATE_TYPE_MAX + 1];
    const json_t *payload;
    size_t doc; /* index into the docs */
} ix_entry;

typedef struct ix_batch {
    ix_doc *docs;
    size_t ndocs;
    ix_entry *entries;
    size_t nentries;
    db_res **cur;      /* the current row of each doc (step 1) */
    db_step *steps;
    size_t nsteps;
    db_param *params;  /* 11 per entry: a close (3) and an insert (8) */
    char **texts;      /* the inserted documents, one per entry */
    bool erased;       /* an entry erased a document: checkpoint after the commit */
} ix_batch;

/* Splits "T.Name" into T (into type) and the name; NULL when the event is not
 * one the index applies. */
static const char *ix_event_name(const char *event_type, char type[VALIDATE_TYPE_MAX + 1])
{
    const char *dot = event_type ? strrchr(event_type, '.') : NULL;
    if (!dot || dot == event_type || (size_t)(dot - event_type) > VALIDATE_TYPE_MAX)
        return NULL;
    memcpy(type, event_type, (size_t)(dot - event_type));
    type[dot - event_type] = '\0';
    if (strncmp(type, CRUD_TYPES_RESERVED, strlen(CRUD_TYPES_RESERVED)) == 0 ||
        !validate_entity_type(type))
        return NULL;
    const char *name = dot + 1;
    if (strcmp(name, "Created") && strcmp(name, "Updated") && strcmp(name, "Deleted") &&
        strcmp(name, "Erased"))
        return NULL;
    return name;
}

static size_t ix_doc_of(ix_batch *b, const char *id)
{
    for (size_t i = 0; i < b->ndocs; i++) {
        if (strcmp(b->docs[i].id, id) == 0)
            return i;
    }
    b->docs[b->ndocs].id = id;
    return b->ndocs++;
}

/* The entries of the page the index applies, and the documents they touch. */
static void ix_collect(ix_batch *b, const json_t *results)
{
    for (size_t i = 0; i < json_array_size(results); i++) {
        const json_t *entry = json_array_get(results, i);
        const json_t *ev = json_object_get(entry, "event");
        const json_t *jid = json_object_get(entry, "id");
        const json_t *orig = json_object_get(ev, "originator");
        const char *id = json_string_value(json_object_get(orig, "id"));
        const json_t *jv = json_object_get(orig, "version");
        ix_entry *x = &b->entries[b->nentries];
        x->name = ix_event_name(json_string_value(json_object_get(ev, "event_type")), x->type);
        if (!x->name || !id || !json_is_integer(jv) || !json_is_integer(jid))
            continue;
        const char *rec = json_string_value(json_object_get(ev, "recorded_at"));
        if (!rec || !timefmt_parse(rec, &x->recorded))
            x->recorded = 0;
        x->log_id = json_integer_value(jid);
        x->version = json_integer_value(jv);
        x->payload = json_object_get(ev, "payload");
        x->doc = ix_doc_of(b, id);
        b->nentries++;
    }
}

/* The current rows read in step 1 into the documents' states. */
static bool ix_load(ix_batch *b, err *e)
{
    for (size_t i = 0; i < b->ndocs; i++) {
        const db_res *r = b->cur[i];
        ix_doc *d = &b->docs[i];
        if (!r || db_res_rows(r) == 0)
            continue;
        const char *type = db_res_text(r, 0, 0), *text = db_res_text(r, 0, 4);
        if (!type || strlen(type) > VALIDATE_TYPE_MAX || !text) {
            err_set(e, ERR_INTERNAL, "a malformed row in the query index");
            return false;
        }
        memcpy(d->type, type, strlen(type) + 1);
        d->created = db_res_int(r, 0, 2);
        d->deleted = db_res_int(r, 0, 3) != 0;
        d->payload = jsonx_parse(text, strlen(text), e);
        if (!d->payload)
            return false;
        d->found = true;
    }
    return true;
}

/* Entry x against its document: adds the close and insert steps, or
 * nothing when the entry is skipped. False on OOM. */
static bool ix_decide(ix_batch *b, size_t k, err *e)
{
    ix_entry *x = &b->entries[k];
    ix_doc *d = &b->docs[x->doc];
    json_t *doc = NULL;
    bool deleted = false;
    if (strcmp(x->name, "Erased") == 0) {
        /* the stream is erased: nothing of the document stays, whatever its type */
        b->params[k * 11] = DB_TEXT(d->id);
        b->steps[b->nsteps++] = (db_step){IX_ERASE, &b->params[k * 11], 1, NULL};
        b->erased = true;
        d->found = d->deleted = false;
        json_decref(d->payload);
        d->payload = NULL;
        return true;
    }
    if (d->found && strcmp(d->type, x->type) != 0)
        return true; /* an event of another type in the stream */
    if (strcmp(x->name, "Created") == 0) {
        if (!json_is_object(x->payload))
            return true;
        doc = json_deep_copy(x->payload);
    } else {
        if (!d->found || d->deleted)
            return true;
        if (strcmp(x->name, "Updated") == 0) {
            doc = mpatch_apply(d->payload, x->payload);
            if (doc && !json_is_object(doc)) {
                json_decref(doc);
                return true;
            }
        } else {
            doc = json_incref(d->payload);
            deleted = true;
        }
    }
    char *text = doc ? jsonx_dump(doc) : NULL;
    if (!text) {
        json_decref(doc);
        err_set(e, ERR_INTERNAL, "out of memory");
        return false;
    }
    b->texts[k] = text;
    db_param *p = &b->params[k * 11];
    if (d->found) {
        p[0] = DB_TEXT(d->id);
        p[1] = DB_INT(x->log_id);
        p[2] = DB_INT(x->recorded);
        b->steps[b->nsteps++] = (db_step){IX_CLOSE, p, 3, NULL};
    }
    int64_t created = d->found ? d->created : x->log_id;
    p[3] = DB_TEXT(x->type);
    p[4] = DB_TEXT(d->id);
    p[5] = DB_INT(x->version);
    p[6] = DB_INT(created);
    p[7] = DB_INT(x->log_id);
    p[8] = DB_INT(x->recorded);
    p[9] = DB_INT(deleted ? 1 : 0);
    p[10] = DB_TEXT(text);
    b->steps[b->nsteps++] = (db_step){IX_INSERT, p + 3, 8, NULL};
    memcpy(d->type, x->type, sizeof d->type);
    d->found = true;
    d->created = created;
    d->deleted = deleted;
    json_decref(d->payload);
    d->payload = doc;
    return true;
}

static void ix_batch_free(ix_batch *b)
{
    for (size_t i = 0; b->docs && i < b->ndocs; i++)
        json_decref(b->docs[i].payload);
    for (size_t i = 0; b->cur && i < b->ndocs; i++)
        db_res_free(b->cur[i]);
    for (size_t i = 0; b->texts && i < b->nentries; i++)
        free(b->texts[i]);
    free(b->docs);
    free(b->entries);
    free(b->cur);
    free(b->steps);
    free(b->params);
    free(b->texts);
}

db_status crud_index_apply_page(db *d, int64_t from, int64_t to, const json_t *results,
                                bool *lost, err *e)
{
    size_t n = json_array_size(results);
    ix_batch b = {0};
    db_res *cas = NULL;
    db_status st = DB_ERR_OTHER;
    *lost = false;
    b.docs = calloc(n + 1, sizeof *b.docs);
    b.entries = calloc(n + 1, sizeof *b.entries);
    b.cur = calloc(n + 1, sizeof *b.cur);
    b.steps = calloc(2 * n + 4, sizeof *b.steps);
    b.params = calloc(11 * (n + 1), sizeof *b.params);
    b.texts = calloc(n + 1, sizeof *b.texts);
    if (!b.docs || !b.entries || !b.cur || !b.steps || !b.params || !b.texts) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto done;
    }
    ix_collect(&b, results);
    /* 1. the transaction, the offset's compare-and-set, the current rows */
    db_param cp[] = {DB_INT(from), DB_INT(to)};
    db_param *ids = b.params; /* reused for the look-ups: one per document */
    b.steps[b.nsteps++] = (db_step){DB_STEP_BEGIN, NULL, 0, NULL};
    b.steps[b.nsteps++] = (db_step){IX_LAZY_COMMIT, NULL, 0, NULL};
    b.steps[b.nsteps++] = (db_step){IX_CAS, cp, 2, &cas};
    for (size_t i = 0; i < b.ndocs; i++) {
        ids[i] = DB_TEXT(b.docs[i].id);
        b.steps[b.nsteps++] = (db_step){IX_CURRENT, &ids[i], 1, &b.cur[i]};
    }
    st = db_pipeline(d, b.steps, b.nsteps, e);
    if (st != DB_OK)
        goto done; /* rolled back by the pipeline */
    if (db_res_rows(cas) == 0) {
        *lost = true;
        db_rollback(d);
        goto done;
    }
    if (!ix_load(&b, e)) {
        st = DB_ERR_OTHER;
        db_rollback(d);
        goto done;
    }
    /* 2. decide in memory; 3. write and commit */
    memset(b.params, 0, 11 * (n + 1) * sizeof *b.params);
    b.nsteps = 0;
    for (size_t k = 0; k < b.nentries; k++) {
        if (!ix_decide(&b, k, e)) {
            st = DB_ERR_OTHER;
            db_rollback(d);
            goto done;
        }
    }
    b.steps[b.nsteps++] = (db_step){DB_STEP_COMMIT, NULL, 0, NULL};
    st = db_pipeline(d, b.steps, b.nsteps, e);
    if (st == DB_OK && b.erased) {
        /* best effort: readers may hold the WAL; the next erasure tries again */
        err ce = ERR_INIT;
        db_res *cr = NULL;
        if (db_exec(d, IX_CHECKPOINT, NULL, 0, &cr, &ce) != DB_OK)
            err_clear(&ce);
        db_res_free(cr);
    }
done:
    db_res_free(cas);
    ix_batch_free(&b);
    return st;
}
