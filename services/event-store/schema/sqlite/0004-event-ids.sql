-- Event ids, metadata and recorded_at: see ../pg/0005-event-ids.sql. The
-- event id is kept as lowercase text; JSON as text.
ALTER TABLE es_events ADD COLUMN event_id TEXT;
ALTER TABLE es_events ADD COLUMN metadata TEXT;
ALTER TABLE es_events ADD COLUMN recorded_at INTEGER NOT NULL DEFAULT 0;
UPDATE es_events SET recorded_at = m.r
    FROM (SELECT log_id,
                 MAX(MIN(occurred_on,
                         CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)))
                     OVER (ORDER BY log_id) AS r
          FROM es_events) AS m
    WHERE m.log_id = es_events.log_id;
CREATE UNIQUE INDEX es_events_event_id ON es_events (event_id) WHERE event_id IS NOT NULL;
