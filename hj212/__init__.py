"""HJ 212-2017/2025 data-logger gateway: TCP and raw packets over MQTT into ingest's writer."""
