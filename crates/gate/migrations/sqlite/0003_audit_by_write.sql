-- A write's submission entry is read before the write runs (the stored
-- proposal is checked against the hash it was submitted with).
CREATE INDEX audit_by_write ON audit (write_id, action);
