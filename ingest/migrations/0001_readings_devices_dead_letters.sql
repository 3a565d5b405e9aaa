-- Readings: a TimescaleDB hypertable when the extension is enabled, else natively
-- range-partitioned by time (partitions are created ahead by ingest.storage).
DO $$
BEGIN
    IF current_setting('offsite.timescaledb', true) = 'on' THEN
        CREATE TABLE readings (
            time timestamptz NOT NULL,
            device_id text NOT NULL,
            metric text NOT NULL,
            value double precision NOT NULL,
            CONSTRAINT readings_key UNIQUE (device_id, metric, time)
        );
        PERFORM create_hypertable(
            'readings', 'time',
            chunk_time_interval => current_setting('offsite.chunk_interval')::interval);
    ELSE
        CREATE TABLE readings (
            time timestamptz NOT NULL,
            device_id text NOT NULL,
            metric text NOT NULL,
            value double precision NOT NULL,
            CONSTRAINT readings_key UNIQUE (device_id, metric, time)
        ) PARTITION BY RANGE (time);
        -- Catches what no partition covers yet, so an insert never fails for a missing
        -- partition; maintenance moves such rows into the proper partition.
        CREATE TABLE readings_default PARTITION OF readings DEFAULT;
    END IF;
END $$;

CREATE TABLE devices (
    device_id text PRIMARY KEY,
    kind text NOT NULL DEFAULT 'sensor' CHECK (kind IN ('sensor', 'camera')),
    first_seen timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    online boolean,
    status_changed_at timestamptz
);

CREATE TABLE dead_letters (
    id bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic text NOT NULL,
    device_id text,
    reason text NOT NULL,
    detail text NOT NULL,
    payload bytea NOT NULL,
    payload_size integer NOT NULL,
    payload_sha256 text NOT NULL
);
CREATE INDEX dead_letters_received_at ON dead_letters (received_at);
CREATE INDEX dead_letters_device ON dead_letters (device_id, received_at);
