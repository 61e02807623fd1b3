"""fustor_source_fs."""
