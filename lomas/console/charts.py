"""Server-rendered charts for the admin overview: geometry computed here, drawn as inline SVG by templates."""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from lomas.amounts import epsilon_short

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
    return epsilon_short(value)


def _nice_ceiling(value: Decimal) -> Decimal:
    """The smallest 1, 2 or 5 times a power of ten at or above value (the top of the y axis)."""
    if value <= 0:
        return Decimal(1)
    magnitude = Decimal(10) ** (value.adjusted())
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def cumulative(points: list[tuple[date, Decimal]], *, first_day: date, days: int) -> list[Decimal]:
    """The running total of daily values at each of `days` days from first_day."""
    by_day = dict(points)
    totals, running = [], Decimal(0)
    for index in range(days):
        running += by_day.get(first_day + timedelta(days=index), Decimal(0))
        totals.append(running)
    return totals


def line_chart(
    per_series: dict[str, list[Decimal]],
    *,
    first_day: date,
    top_value: Decimal | None = None,
    width: int = 440,
    height: int = 170,
) -> LineChart:
    """One value per day per series, as polylines from first_day; the y axis reaches top_value (or the largest)."""
    days = max((len(values) for values in per_series.values()), default=1)
    left, top, right, bottom = 56, 12, width - 12, height - 36
    largest = max((value for values in per_series.values() for value in values), default=Decimal(0))
    axis_top = _nice_ceiling(top_value if top_value is not None else largest)
    step_x = (right - left) / max(days - 1, 1)

    def y_of(value: Decimal) -> float:
        return round(bottom - float(value / axis_top) * (bottom - top), 2)

    series = [
        Series(
            name=name,
            color=PALETTE[position % len(PALETTE)],
            points=" ".join(f"{round(left + index * step_x, 2)},{y_of(value)}" for index, value in enumerate(values)),
            total=_short(values[-1] if values else Decimal(0)),
        )
        for position, (name, values) in enumerate(sorted(per_series.items()))
    ]
    x_ticks = [
        Tick(position=round(left + index * step_x, 2), label=(first_day + timedelta(days=index)).strftime("%d %b"))
        for index in range(0, days, max(days // 3, 1))
    ]
    y_ticks = [
        Tick(position=y_of(axis_top * fraction / 4), label=_short(axis_top * fraction / 4)) for fraction in range(5)
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


def cumulative_charts(
    per_dataset: dict[str, list[tuple[date, Decimal]]], *, first_day: date, days: int
) -> list[LineChart]:
    """One cumulative-spend chart per dataset (small multiples, so no lines overlap), all on one y scale."""
    totals = {name: cumulative(points, first_day=first_day, days=days) for name, points in per_dataset.items()}
    top_value = max((values[-1] for values in totals.values()), default=Decimal(0))
    return [
        line_chart({name: values}, first_day=first_day, top_value=top_value) for name, values in sorted(totals.items())
    ]


def bar_chart(
    rows: list[tuple[str, Decimal]],
    *,
    largest: Decimal | None = None,
    width: int = 520,
    label_width: int = 160,
    bar_height: int = 22,
) -> BarChart:
    """One bar per (label, value), scaled to `largest` (by default the largest value here)."""
    if largest is None:
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


def bar_charts_on_one_scale(per_dataset: dict[str, list[tuple[str, Decimal]]]) -> dict[str, BarChart]:
    """A bar chart per dataset, every bar scaled to the largest value of all datasets."""
    largest = max((value for rows in per_dataset.values() for _, value in rows), default=Decimal(0))
    return {name: bar_chart(rows, largest=largest) for name, rows in per_dataset.items()}
