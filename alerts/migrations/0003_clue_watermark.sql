-- The durable hand-off from rules: the last clue change (clues.change_seq) applied to alerts,
-- advanced in the same transaction as the alert it produced, so a crash between the clue's
-- commit and the alert's leaves the change past the watermark, to be applied after restart.
-- It starts at the changes already present: those were handed over by the in-memory queue.
CREATE TABLE alert_clue_watermark (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq bigint NOT NULL
);
INSERT INTO alert_clue_watermark (seq) SELECT COALESCE(max(change_seq), 0) FROM clues;

-- Clue changes that failed to apply for a reason other than the database (a bug, bad data):
-- the watermark moves on so alerting goes on, and the sweep retries these with backoff.
CREATE TABLE alert_clue_retries (
    clue_id bigint PRIMARY KEY,
    attempts integer NOT NULL DEFAULT 1,
    error text NOT NULL,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    next_at timestamptz NOT NULL
);
