"""Revenue-operations scorecards: CRM extracts to versioned KPIs to emailed PDF scorecards.

Sub-packages follow the data flow: extract -> reconcile -> snapshots -> kpis -> scorecards,
with warehouse (storage) and audit (the ledger) beside them.
"""

__version__ = "0.1.0"
