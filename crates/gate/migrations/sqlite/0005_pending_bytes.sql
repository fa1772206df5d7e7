-- The per-token quota on stored bytes: each write's record size, kept with
-- every insert and update, and summed over the agent's pending writes
-- (held, approved, executing) through a partial index that holds those rows
-- only. A sum rather than a counter: nothing to drift, and the rows it
-- reads are bounded by the quota itself.
ALTER TABLE writes ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE writes SET bytes = length(CAST(record AS BLOB));
CREATE INDEX writes_pending_by_agent ON writes (agent, bytes)
    WHERE status IN ('held', 'approved', 'executing');
