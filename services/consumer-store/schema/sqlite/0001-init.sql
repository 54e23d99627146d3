-- The consumer store's schema on SQLite (see ../pg/0001-init.sql; the same
-- table). WITHOUT ROWID: the id is the only key, and lists go in id order.
CREATE TABLE cs_consumers (
    id              TEXT    PRIMARY KEY,
    consumer_offset INTEGER NOT NULL CHECK (consumer_offset >= 0),
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
