"""Runs: the lifecycle every stage shares (output folder, config checks, fingerprints and the rerun decision) and
the configuration reference generated from ``conf/``."""
