"""SmartNoise-SQL: SQL on the table `df` (adapter.py), run on SQLite made total (sqlite.py)."""
