"""Engine failover: one active engine elected by a PostgreSQL advisory lock, a fencing
epoch, and the engine's own persistent MQTT subscription (see docs/operators.md)."""
