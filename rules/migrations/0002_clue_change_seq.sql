-- Every committed change of a clue takes the next number of one sequence, so consumers (alerts)
-- can read "everything after N" and keep N as a durable watermark. Writers take an advisory
-- lock before drawing numbers, so numbers are committed in order and a watermark never skips
-- a change still being committed.
CREATE SEQUENCE clues_change_seq;
ALTER TABLE clues ADD COLUMN change_seq bigint NOT NULL DEFAULT nextval('clues_change_seq');
ALTER SEQUENCE clues_change_seq OWNED BY clues.change_seq;
CREATE INDEX clues_change_seq_idx ON clues (change_seq);
