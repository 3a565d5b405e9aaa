-- The fencing epoch: bumped by each engine that wins the advisory lock. Every clue commit
-- and outbox claim of an engine reads it FOR SHARE and refuses to go on when it moved, so an
-- engine that lost its lock cannot write after the winner's bump commits.
CREATE TABLE IF NOT EXISTS engine_lease (
    id smallint PRIMARY KEY CHECK (id = 1),
    epoch bigint NOT NULL DEFAULT 0,
    holder text,
    acquired_at timestamptz
);
INSERT INTO engine_lease (id) VALUES (1) ON CONFLICT (id) DO NOTHING;

-- How far the engine has evaluated each device's stream (newest reading time), written in
-- the same transaction as its clue transitions. A takeover rebuilds rule state from the
-- stored readings up to this point only: later ones are still unacknowledged at the broker
-- and reach the new engine again.
CREATE TABLE IF NOT EXISTS engine_progress (
    device_id text PRIMARY KEY,
    evaluated_to timestamptz NOT NULL
);
