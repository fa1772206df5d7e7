-- The explicit lifecycle (issue 10): claims on in-flight writes, and the
-- old catch-all `failed` split into what it meant.

-- A gate working on an approved, executing or rolling-back write holds a
-- claim: its owner id and a lease. Nobody else takes the write up before
-- `claim_until`; a claim with no owner and a future `claim_until` is a
-- backoff before the next retry.
ALTER TABLE writes ADD COLUMN claim_owner TEXT;
ALTER TABLE writes ADD COLUMN claim_until TEXT;

-- `failed` used to mean three things. The last history note says which.
UPDATE writes
SET status = 'outcome_unknown',
    record = json_set(record, '$.status', 'outcome_unknown', '$.history[#-1].to', 'outcome_unknown'),
    summary = json_set(summary, '$.status', 'outcome_unknown')
WHERE status = 'failed'
  AND json_extract(record, '$.history[#-1].note') LIKE 'after restart: whether the write took effect cannot be known%';

UPDATE writes
SET status = 'rollback_failed',
    record = json_set(record, '$.status', 'rollback_failed', '$.history[#-1].to', 'rollback_failed'),
    summary = json_set(summary, '$.status', 'rollback_failed')
WHERE status = 'failed'
  AND json_extract(record, '$.history[#-1].note') = 'rollback ran but verification failed';

CREATE INDEX writes_by_claim ON writes (status, claim_until);
