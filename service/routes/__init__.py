"""HTTP routes, thin: parse, call the ingest/audit functions, shape the response."""
