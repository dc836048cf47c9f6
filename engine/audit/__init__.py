"""The tamper-evident audit log: who did what, when, on which host; never media."""
