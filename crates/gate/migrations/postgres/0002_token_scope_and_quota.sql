-- Least privilege for tokens, revocation, and the per-token quota on stored
-- bytes (the SQLite store's 0004 and 0005, in PostgreSQL's types).

-- `{"fs_roots": [...], "sql": [...], "http_allow": [...]}`; NULL: the token
-- reaches everything the gate serves (every token made before this).
ALTER TABLE tokens ADD COLUMN scope TEXT;
-- Set once a token is revoked: it never authenticates again; the row stays,
-- so its name cannot be given to a new token.
ALTER TABLE tokens ADD COLUMN revoked_at TIMESTAMPTZ;

-- Each write's record size, kept with every insert and update and summed
-- over the agent's pending writes through a partial index holding only
-- those rows. The quota check runs under the audit lock (every insert
-- does), so two gates cannot both let a token past its quota.
ALTER TABLE writes ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0;
UPDATE writes SET bytes = octet_length(record);
CREATE INDEX writes_pending_by_agent ON writes (agent, bytes)
    WHERE status IN ('held', 'approved', 'executing');
