"""offsite composition root: settings, database, migrations, CLI and wiring."""
