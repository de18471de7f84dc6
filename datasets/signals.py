"""Hooks that let higher apps add to what datasets records, without datasets importing them."""

from django.dispatch import Signal

# Sent by dataset_delete just before the dataset goes, with `dataset=`; each receiver returns a dict
# merged into the audit entry's details, or raises to refuse (budgets refuses while budgets refer to it).
dataset_deleting = Signal()
