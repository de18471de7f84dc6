"""Template filters showing privacy amounts as the admin pages do: short, exact on hover."""

from decimal import Decimal

from django import template
from django.utils.safestring import SafeString

from lomas.admin_display import amount_html

register = template.Library()


@register.filter
def epsilon(value: Decimal | None) -> SafeString:
    """ε to 6 significant digits, the exact decimal in the title."""
    return amount_html(value, "epsilon")


@register.filter
def delta(value: Decimal | None) -> SafeString:
    """δ in scientific notation, the exact decimal in the title."""
    return amount_html(value, "delta")
