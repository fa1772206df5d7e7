-- The shared store: the same tables as the embedded SQLite store (its
-- migrations 0001 to 0003), in PostgreSQL types, for several gates on one
-- database. Every change of a write and its audit entry are written in one
-- transaction (see src/store/postgres.rs).
--
-- Times are `timestamptz`, not RFC 3339 text: the database orders them as
-- instants, whatever the writer's formatting, and keeps microseconds, which
-- is what the audit hash covers (`audit::seal` truncates to them). JSON
-- documents (a write's record, an audit body) are `text`, not `jsonb`: the
-- audit hash is over the body exactly as sealed, `jsonb` would reorder keys
-- and rewrite numbers, and it refuses the `\u0000` escape an agent may send.

CREATE TABLE tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ
);

-- `ord` keeps each resource and edge in the place it was first stored (what
-- SQLite's rowid gives): an upsert that replaces the body keeps the row.
CREATE TABLE resources (
    id TEXT PRIMARY KEY,
    ord BIGINT GENERATED ALWAYS AS IDENTITY,
    body TEXT NOT NULL
);

CREATE TABLE edges (
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    ord BIGINT GENERATED ALWAYS AS IDENTITY,
    body TEXT NOT NULL,
    PRIMARY KEY (src, dst)
);

-- A gate working on an approved, executing or rolling-back write holds a
-- claim: its owner id and a lease. Nobody else takes the write up before
-- `claim_until`; a claim with no owner and a future `claim_until` is a
-- backoff before the next retry. The claim is not part of `version`.
CREATE TABLE writes (
    id TEXT PRIMARY KEY,
    agent TEXT NOT NULL,
    idempotency_key TEXT,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    record TEXT NOT NULL,
    summary TEXT NOT NULL,
    claim_owner TEXT,
    claim_until TIMESTAMPTZ,
    UNIQUE (agent, idempotency_key)
);
CREATE INDEX writes_by_status ON writes (status, created_at);
CREATE INDEX writes_by_claim ON writes (status, claim_until);

-- One chain for every gate. Appends are serialised by an advisory lock (see
-- postgres.rs); the keys below make a fork impossible even so: no two
-- entries share a place, and no two follow the same entry.
CREATE TABLE audit (
    seq BIGINT PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    write_id TEXT,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL
);
-- A write's submission entry is read before the write runs (the stored
-- proposal is checked against the hash it was submitted with).
CREATE INDEX audit_by_write ON audit (write_id, action);

-- The catalog version and the freeze switch, as in SQLite (text values).
CREATE TABLE state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO state (key, value) VALUES ('catalog_version', '0');
