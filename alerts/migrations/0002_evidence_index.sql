-- Evidence retention asks whether any alert still needs a snapshot: index the clue evidence.
CREATE INDEX alert_clues_evidence ON alert_clues USING gin (evidence_ids);
