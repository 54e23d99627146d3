-- The event store's schema on SQLite (see ../pg/0001-init.sql; the same
-- tables, with JSON kept as text). One writer at a time is SQLite's own rule,
-- so log ids follow commit order without a lock of ours.
CREATE TABLE es_events (
    log_id        INTEGER PRIMARY KEY,
    originator_id TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    event_type    TEXT    NOT NULL,
    entity_type   TEXT    NOT NULL,
    event_name    TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    occurred_on   INTEGER NOT NULL,
    UNIQUE (originator_id, version)
);
CREATE INDEX es_events_entity_log ON es_events (entity_type, log_id);

CREATE TABLE es_streams (
    id              TEXT    PRIMARY KEY,
    entity_type     TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    last_event_type TEXT    NOT NULL,
    created_log_id  INTEGER NOT NULL,
    updated_log_id  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX es_streams_entity_created ON es_streams (entity_type, created_log_id);

CREATE TABLE es_snapshots (
    originator_id TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    payload       TEXT    NOT NULL,
    PRIMARY KEY (originator_id, version)
) WITHOUT ROWID;
