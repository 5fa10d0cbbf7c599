"""Audit: the run ledger auditors replay from."""
