"""Hooks that let higher apps add to what accounts records, without accounts importing them."""

from django.dispatch import Signal

# Sent by user_delete just before the user is tombstoned, with `user=` and `actor=`; each receiver
# returns a dict merged into the audit entry's details (budgets revokes the user's budgets and adds
# them, with `ledger_kept`: [{dataset, spent_epsilon, spent_delta}] of those with spent amounts).
user_deleting = Signal()
