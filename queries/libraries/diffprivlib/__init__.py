"""DiffPrivLib: JSON pipelines of allow-listed models (adapter.py); what a fit releases (release.py)."""
