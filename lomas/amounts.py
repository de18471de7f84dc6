"""Privacy amounts as people read them: ε to 6 significant digits, δ in scientific notation."""

from decimal import Decimal

# ε is shown to this many significant digits, δ's mantissa in scientific notation to at most this many.
EPSILON_DIGITS = 6
DELTA_DIGITS = 4


def amount_text(value: Decimal | None) -> str:
    """A privacy amount, exact and without trailing zeros (10 → "10", 0.0050 → "0.005")."""
    if value is None:
        return "-"
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


def epsilon_short(value: Decimal | None) -> str:
    """ε to 6 significant digits (0.5000000000000000000000000000 → "0.5", 1/3 → "0.333333")."""
    if value is None:
        return "-"
    return amount_text(Decimal(f"{value:.{EPSILON_DIGITS}g}")) if value else "0"


def delta_short(value: Decimal | None) -> str:
    """δ in scientific notation (0.0000100000 → "1e-5", 0.00012345678 → "1.235e-4"; 0 → "0")."""
    if value is None:
        return "-"
    if not value:
        return "0"
    mantissa, exponent = f"{value:.{DELTA_DIGITS - 1}e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
