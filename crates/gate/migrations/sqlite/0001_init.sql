-- The gate's durable state. Every change of a write and its audit entry are
-- written in one transaction (see store.rs).
CREATE TABLE tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT
);

CREATE TABLE resources (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL
);

CREATE TABLE edges (
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (src, dst)
);

CREATE TABLE writes (
    id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    idempotency_key TEXT,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    record TEXT NOT NULL,
    summary TEXT NOT NULL,
    UNIQUE (agent, idempotency_key)
);
CREATE INDEX writes_by_status ON writes (status, created_at);

CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    write_id TEXT,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO state (key, value) VALUES ('catalog_version', '0');
