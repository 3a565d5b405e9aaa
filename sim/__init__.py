"""The device and camera simulator: a client of offsite's MQTT contract, not part of the server."""
