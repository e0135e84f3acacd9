"""Charts drawn on the server as inline SVG numbers: no chart library, no build step."""
from dataclasses import dataclass

MAX_POINTS = 200


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    points: str          # "x,y x,y ..." for <polyline>
    area: str            # the same line closed to the x axis, for a soft fill
    y_ticks: list        # [(y, label)]
    x_ticks: list        # [(x, label)]
    left: int
    right: int
    top: int
    bottom: int
    last: float | None
    count: int


def loss_chart(losses: list[float], *, width: int = 560, height: int = 190) -> LineChart | None:
    """A line of training loss per step; long runs are thinned to at most MAX_POINTS points."""
    values = [float(v) for v in losses or [] if isinstance(v, (int, float))]
    if not values:
        return None
    n = len(values)
    stride = max(1, -(-n // MAX_POINTS))
    indexed = [(i, values[i]) for i in range(0, n, stride)]
    if indexed[-1][0] != n - 1:
        indexed.append((n - 1, values[-1]))
    left, right, top, bottom = 46, width - 10, 10, height - 24
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 0.5 * abs(low or 1), high + 0.5 * abs(high or 1)

    def x(i: int) -> float:
        return left + (right - left) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return bottom - (bottom - top) * (v - low) / (high - low)

    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in indexed)
    area = f"{x(indexed[0][0]):.1f},{bottom} {points} {x(indexed[-1][0]):.1f},{bottom}"
    y_ticks = [(round(y(v), 1), f"{v:.3g}") for v in (high, (high + low) / 2, low)]
    x_ticks = [(round(x(0), 1), "1"), (round(x(n - 1), 1), str(n))]
    return LineChart(width, height, points, area, y_ticks, x_ticks, left, right, top, bottom, values[-1], n)


def ctr(impressions: int, clicks: int) -> float | None:
    """Click-through rate in percent (the platform's `rate`), or None before the first impression."""
    from campaigns.selectors_serving import rate

    fraction = rate(clicks, impressions)
    return None if fraction is None else round(100.0 * fraction, 1)


def bar_width(value: float | None, maximum: float | None) -> float:
    """A bar's width in percent of the longest one (0 when there is nothing to compare)."""
    if not value or not maximum:
        return 0.0
    return round(100.0 * value / maximum, 1)
