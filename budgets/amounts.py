"""Exact privacy amounts: floats from the wire and the DP libraries become decimals here."""

from dataclasses import dataclass
from decimal import ROUND_CEILING, Context, Decimal

from budgets.models import AMOUNT
from lomas.errors import InvalidQuery

# Amounts keep 15 significant digits (what every float and every database keeps exactly),
# rounded up so that a charge is never smaller than the cost the library reported.
SIGNIFICANT_DIGITS = 15
_SIGNIFICANT = Context(prec=SIGNIFICANT_DIGITS, rounding=ROUND_CEILING)
_QUANTUM = Decimal(1).scaleb(-AMOUNT["decimal_places"])
_PLACES = Context(prec=AMOUNT["max_digits"], rounding=ROUND_CEILING)
# The first amount a budget column cannot hold.
_TOO_LARGE = Decimal(10) ** (AMOUNT["max_digits"] - AMOUNT["decimal_places"])
AMOUNT_TOO_LARGE = "Privacy amount {value:.6g} is too large: amounts are below {limit:.0e}."


class AmountTooLarge(InvalidQuery):
    """A cost or budget no budget can hold (400, not an overflow in the database)."""


def to_amount(value: float | int | str | Decimal) -> Decimal:
    """The decimal a number stands for (0.1 → Decimal('0.1'), not the binary float), never rounded down."""
    if isinstance(value, float):
        value = repr(value)
    decimal = Decimal(value)
    if not decimal.is_finite() or decimal < 0:
        raise ValueError(f"Not a privacy amount: {value!r}")
    if decimal >= _TOO_LARGE:
        raise AmountTooLarge(AMOUNT_TOO_LARGE.format(value=float(decimal), limit=_TOO_LARGE))
    return _SIGNIFICANT.plus(decimal).quantize(_QUANTUM, context=_PLACES)


def to_charged_float(value: float) -> float:
    """The float that will be charged for a reported cost: exactly what the budget records."""
    return float(to_amount(value))


@dataclass(frozen=True)
class Amounts:
    """An exact (epsilon, delta) pair."""

    epsilon: Decimal
    delta: Decimal

    @classmethod
    def of(cls, epsilon: float | Decimal, delta: float | Decimal) -> "Amounts":
        """Exact amounts from floats or decimals."""
        return cls(to_amount(epsilon), to_amount(delta))
