-- See 0002-live-streams.sql. SQLite's LIKE ignores the case of ASCII letters
-- (PostgreSQL's does not), so `NOT LIKE '%.Deleted'` also left out streams
-- whose last event is named `deleted` or `DELETED`. GLOB is case-sensitive:
-- the same meaning as on PostgreSQL. es_store.c's SQLite text of
-- ES_LIST_STREAMS_LIVE repeats this predicate word for word.
DROP INDEX es_streams_entity_live;
CREATE INDEX es_streams_entity_live ON es_streams (entity_type, created_log_id)
    WHERE last_event_type NOT GLOB '*.Deleted';
