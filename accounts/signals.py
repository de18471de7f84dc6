"""Hooks that let higher apps add to what accounts records, without accounts importing them."""

from django.dispatch import Signal

# Sent by user_delete just before the user goes, with `user=`; each receiver returns a dict
# merged into the audit entry's details (budgets adds the budgets deleted with the user).
user_deleting = Signal()
