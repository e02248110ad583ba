"""Accounting, acted on: the SQLite ledger in the state directory (``ledger``), its update
from each cycle's snapshot and the schedds' job history (``record``), the APEL outgoing
queue (``apel``) and the usage report (``report``). The decisions are in
``csctl/plan/accounting/``.
"""
