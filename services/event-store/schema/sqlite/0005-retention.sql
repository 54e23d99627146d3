-- Stream lifecycle: retention settings and the erased tombstone (see
-- ../pg/0006-retention.sql). erased is 0 or 1.
ALTER TABLE es_streams ADD COLUMN max_count INTEGER;
ALTER TABLE es_streams ADD COLUMN max_age_seconds INTEGER;
ALTER TABLE es_streams ADD COLUMN truncate_before INTEGER;
ALTER TABLE es_streams ADD COLUMN erased INTEGER NOT NULL DEFAULT 0;
CREATE INDEX es_streams_retained ON es_streams (id)
    WHERE max_count IS NOT NULL OR max_age_seconds IS NOT NULL OR truncate_before IS NOT NULL;
