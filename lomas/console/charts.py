"""Server-rendered charts for the admin overview: geometry computed here, drawn as inline SVG by templates."""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from lomas.admin_display import amount_text

# Decimals shown on charts (ledger amounts keep all theirs).
CHART_DECIMALS = 6

# Distinguishable colours for successive series (colour-blind friendly palette).
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")


@dataclass(frozen=True)
class Series:
    """One dataset's line: its name, colour, SVG polyline points and total."""

    name: str
    color: str
    points: str
    total: str


@dataclass(frozen=True)
class Tick:
    """An axis label at a position (x or y, in SVG units)."""

    position: float
    label: str


@dataclass(frozen=True)
class LineChart:
    """A line per series over consecutive days, with its axes."""

    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    series: list[Series]
    x_ticks: list[Tick]
    y_ticks: list[Tick]


@dataclass(frozen=True)
class Bar:
    """One horizontal bar: its label, value text (drawn at value_x), vertical position and length."""

    label: str
    value: str
    y: float
    length: float
    value_x: float


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars, longest for the largest value."""

    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]


def _short(value: Decimal) -> str:
    return amount_text(round(value, CHART_DECIMALS))


def _nice_ceiling(value: Decimal) -> Decimal:
    """The smallest 1, 2 or 5 times a power of ten at or above value (the top of the y axis)."""
    if value <= 0:
        return Decimal(1)
    magnitude = Decimal(10) ** (value.adjusted())
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def line_chart(
    per_series: dict[str, list[tuple[date, Decimal]]],
    *,
    first_day: date,
    days: int,
    width: int = 760,
    height: int = 280,
) -> LineChart:
    """Daily values per series (days without a value are 0) as polylines from first_day over `days` days."""
    left, top, right, bottom = 56, 12, width - 12, height - 36
    top_value = _nice_ceiling(max((value for points in per_series.values() for _, value in points), default=Decimal(0)))
    step_x = (right - left) / max(days - 1, 1)

    def y_of(value: Decimal) -> float:
        return round(bottom - float(value / top_value) * (bottom - top), 2)

    series = []
    for position, (name, points) in enumerate(sorted(per_series.items())):
        by_day = dict(points)
        coordinates = [
            f"{round(left + index * step_x, 2)},{y_of(by_day.get(first_day + timedelta(days=index), Decimal(0)))}"
            for index in range(days)
        ]
        total = sum((value for _, value in points), Decimal(0))
        series.append(
            Series(
                name=name,
                color=PALETTE[position % len(PALETTE)],
                points=" ".join(coordinates),
                total=_short(total),
            )
        )
    x_ticks = [
        Tick(position=round(left + index * step_x, 2), label=(first_day + timedelta(days=index)).strftime("%d %b"))
        for index in range(0, days, max(days // 6, 1))
    ]
    y_ticks = [
        Tick(position=y_of(top_value * fraction / 4), label=_short(top_value * fraction / 4)) for fraction in range(5)
    ]
    return LineChart(
        width=width,
        height=height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        series=series,
        x_ticks=x_ticks,
        y_ticks=y_ticks,
    )


def bar_chart(
    rows: list[tuple[str, Decimal]], *, width: int = 520, label_width: int = 160, bar_height: int = 22
) -> BarChart:
    """One bar per (label, value), scaled to the largest value."""
    largest = max((value for _, value in rows), default=Decimal(0))
    room = width - label_width - 90
    gap = 6
    bars = []
    for index, (label, value) in enumerate(rows):
        length = round(float(value / largest) * room, 2) if largest else 0
        bars.append(
            Bar(
                label=label,
                value=_short(value),
                y=index * (bar_height + gap),
                length=length,
                value_x=label_width + length + gap,
            )
        )
    return BarChart(
        width=width,
        height=max(len(rows), 1) * (bar_height + gap),
        label_width=label_width,
        bar_height=bar_height,
        bars=bars,
    )
