"""The transparency log: sequencing events into a signed tree, its static files and proofs under ``/log/``."""
