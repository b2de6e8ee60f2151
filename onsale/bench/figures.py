"""What benchmarks and load tests print: percentiles, plain text tables, progress lines.

One convention for every figure they show, so that a p99 of ``onsale bench`` and a p99 of
``onsale loadtest`` mean the same thing.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (``q`` in percent, 0 to 100) of values already
    sorted: the smallest value with at least ``q`` % of the values at or below it, always one
    of the values, never interpolated. NaN when there are none."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table: first column left-aligned, the others (figures) right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        parts = [first.ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def progress(message: str, tag: str = "") -> None:
    """A progress line on stderr, ``[tag] message`` when tagged: stdout carries the figures
    (or JSON lines) alone."""
    print(f"[{tag}] {message}" if tag else message, file=sys.stderr, flush=True)
