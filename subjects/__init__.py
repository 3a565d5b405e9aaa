"""Subject library: regulated subjects, supervising departments and device bindings."""
