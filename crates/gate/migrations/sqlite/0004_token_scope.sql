-- Least privilege for tokens: what a token's writes may reach, and
-- revocation.

-- `{"fs_roots": [...], "sql": [...], "http_allow": [...]}`; NULL: the token
-- reaches everything the gate serves (every token made before this).
ALTER TABLE tokens ADD COLUMN scope TEXT;

-- Set once a token is revoked: it never authenticates again. The row is
-- kept, so its name cannot be given to a new token.
ALTER TABLE tokens ADD COLUMN revoked_at TEXT;
