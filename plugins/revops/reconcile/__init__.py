"""Reconcile: raw extracts into typed, de-duplicated, rule-checked staging tables."""
