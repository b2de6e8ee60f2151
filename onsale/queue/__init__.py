"""The virtual waiting room: join, status, metering, admission tokens."""
