-- The CRUD store's query index (SPEC §4): derived data, rebuilt from the
-- event store's log when lost. One row per version of a document, holding
-- in the log ids [valid_from_log_id, valid_to_log_id) (valid_to NULL: the
-- current state), with the recorded_at (ms since the epoch) of both ends.
CREATE TABLE crud_index_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    log_offset BIGINT NOT NULL
);
INSERT INTO crud_index_state (id, log_offset) VALUES (1, 0);

CREATE TABLE crud_docs (
    entity_type TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_log_id BIGINT NOT NULL,
    valid_from_log_id BIGINT NOT NULL,
    valid_to_log_id BIGINT,
    valid_from_recorded_at BIGINT NOT NULL,
    valid_to_recorded_at BIGINT,
    deleted INTEGER NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (doc_id, valid_from_log_id)
);
CREATE INDEX crud_docs_current ON crud_docs (entity_type, created_log_id)
    WHERE valid_to_log_id IS NULL;
CREATE INDEX crud_docs_past ON crud_docs (entity_type, created_log_id, valid_from_log_id);
CREATE INDEX crud_docs_recorded ON crud_docs (valid_from_recorded_at);
CREATE INDEX crud_docs_open ON crud_docs (doc_id) WHERE valid_to_log_id IS NULL;
