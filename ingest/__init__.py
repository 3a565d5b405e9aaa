"""MQTT intake: topic contract, payload codecs, validation, dead letters, batch writer."""
