"""OpenDP: polars plans built on a Context, released on the server's own Context (adapter.py).

plan.py reads a plan as data, guard.py refuses unpickling while one is handled, totality.py
admits only expressions that cannot fail on any value, context.py builds the Context from the
metadata and solves the noise scale.
"""
