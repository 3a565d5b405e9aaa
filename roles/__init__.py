"""Which parts of offsite run in this process: the roles of `offsite run --role ...`."""
