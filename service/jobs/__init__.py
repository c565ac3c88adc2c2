"""Background jobs: re-verification, webhook delivery, garbage collection (see :mod:`service.jobs.engine`)."""
