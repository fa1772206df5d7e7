-- Fencing tokens (the SQLite store's 0006): every claim taken on an
-- in-flight write gets the next number of that write's own counter, kept
-- for good. Every record a gate makes under its claim is a compare-and-set
-- on the token too: a gate whose lease lapsed, and whose write another gate
-- has claimed since, cannot record a result.
ALTER TABLE writes ADD COLUMN fence BIGINT NOT NULL DEFAULT 0;
