-- The event store's schema on PostgreSQL.
-- es_events is both the streams' events and the application log: log_id is
-- assigned under a transaction-level advisory lock, so ids follow commit order.
CREATE TABLE es_events (
    log_id        bigint PRIMARY KEY,
    originator_id text   NOT NULL,
    version       bigint NOT NULL,
    event_type    text   NOT NULL,
    entity_type   text   NOT NULL,
    event_name    text   NOT NULL,
    payload       jsonb  NOT NULL,
    occurred_on   bigint NOT NULL, -- ms since the epoch, UTC
    UNIQUE (originator_id, version)
);
CREATE INDEX es_events_entity_log ON es_events (entity_type, log_id);

CREATE TABLE es_streams (
    id              text   PRIMARY KEY,
    entity_type     text   NOT NULL,
    version         bigint NOT NULL,
    last_event_type text   NOT NULL,
    created_log_id  bigint NOT NULL,
    updated_log_id  bigint NOT NULL
);
CREATE INDEX es_streams_entity_created ON es_streams (entity_type, created_log_id);

CREATE TABLE es_snapshots (
    originator_id text   NOT NULL,
    version       bigint NOT NULL,
    payload       jsonb  NOT NULL,
    PRIMARY KEY (originator_id, version)
);
