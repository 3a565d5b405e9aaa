"""Video: frame intake, detectors, zones and filters, evidence snapshots."""
