-- Data-quality flags (HJ 212 / the Ministry's marking rules): N normal, F stopped,
-- M maintenance, S manual, D fault, C calibration, T over range, B communication.
-- No CHECK constraint: TimescaleDB refuses some constraints on compressed hypertables;
-- the codecs admit only these letters.
ALTER TABLE readings ADD COLUMN flag text NOT NULL DEFAULT 'N';

-- HJ 212 data loggers register as devices of their own kind.
ALTER TABLE devices DROP CONSTRAINT devices_kind_check;
ALTER TABLE devices ADD CONSTRAINT devices_kind_check
    CHECK (kind IN ('sensor', 'camera', 'hj212'));
