"""SmartNoise-Synth: synthesizers fitted under DP (adapter.py); dpctgan's accountant and training loop (dpctgan.py)."""
