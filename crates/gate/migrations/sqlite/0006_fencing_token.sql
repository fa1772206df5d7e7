-- Fencing tokens: every claim taken on an in-flight write gets the next
-- number of that write's own counter, kept here for good (a release or a
-- move out of flight leaves it). Every record a gate makes under its claim
-- is a compare-and-set on the token too: a gate whose lease lapsed, and
-- whose write another gate has claimed since, cannot record a result.
ALTER TABLE writes ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
