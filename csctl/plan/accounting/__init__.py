"""Accounting, decided: what a cycle saw of each VM (``usage``), the APEL cloud records
and messages made from the ledger (``apel``), and the usage report's arithmetic
(``report``). Plain data in, plain data out: the ledger itself (SQLite) is in
``csctl/engine/accounting/``.
"""
