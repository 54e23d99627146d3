-- The consumer store's schema on PostgreSQL: one row per consumer, holding
-- the id of the last log entry it has fully processed. updated_at is ms
-- since the epoch, UTC, set by the service at each write.
CREATE TABLE cs_consumers (
    id              text   COLLATE "C" PRIMARY KEY, -- byte order, as on SQLite
    consumer_offset bigint NOT NULL CHECK (consumer_offset >= 0),
    updated_at      bigint NOT NULL
);
