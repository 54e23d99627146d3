-- Ids and type names are compared byte by byte: the "C" collation. The
-- database's default (a libc locale such as C.UTF-8 or en_US.UTF-8) would
-- call strcoll for every comparison of every index insert and probe, and
-- sorts no differently for what the event store asks (equality, and order
-- by log id). The indexes on these columns are rebuilt once, inside the
-- migration's transaction: on a large database the first start of this
-- version holds the tables for that long (a maintenance window).
ALTER TABLE es_events
    ALTER COLUMN originator_id TYPE text COLLATE "C",
    ALTER COLUMN event_type TYPE text COLLATE "C",
    ALTER COLUMN entity_type TYPE text COLLATE "C",
    ALTER COLUMN event_name TYPE text COLLATE "C";
ALTER TABLE es_streams
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN entity_type TYPE text COLLATE "C",
    ALTER COLUMN last_event_type TYPE text COLLATE "C";
ALTER TABLE es_snapshots
    ALTER COLUMN originator_id TYPE text COLLATE "C";
