"""Export cells a spreadsheet never runs, and the reports' from/to."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onsale.reports.errors import ReportRejected
from onsale.reports.exports import safe
from onsale.reports.period import parse

RISKY = ("=", "+", "-", "@", "\t", "\r")


@given(st.text())
def test_a_cell_never_starts_a_formula_and_keeps_its_text(value: str) -> None:
    cell = safe(value)
    assert not cell.startswith(RISKY)
    assert cell == value or (value.startswith(RISKY) and cell == "'" + value)
    # And it survives CSV quoting as written.
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([cell, "x"])
    assert next(csv.reader(io.StringIO(buffer.getvalue()))) == [cell, "x"]


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_starts_are_escaped(value: str) -> None:
    assert safe(value) == "'" + value


def test_periods() -> None:
    p = parse("2030-01-01T10:00:30Z", "2030-01-01T12:00:00+01:00")
    assert p.start == datetime(2030, 1, 1, 10, 0, 30, tzinfo=UTC)
    assert p.end == datetime(2030, 1, 1, 11, 0, tzinfo=UTC)
    # An unencoded "+" arrives as a space; a naive time is UTC.
    assert parse("2030-01-01T10:00:00 01:00", None).start == datetime(2030, 1, 1, 9, tzinfo=UTC)
    assert parse("2030-01-01T10:00", "").start == datetime(2030, 1, 1, 10, tzinfo=UTC)
    low, high = parse("2030-01-01T10:00:30Z", "2030-01-01T10:05:10Z").minutes()
    assert (low.minute, high.minute) == (0, 6)
    assert parse(None, None).start is None


@pytest.mark.parametrize(
    ("start", "end"),
    [("soon", None), (None, "2030-02-30T00:00Z"), ("2030-01-02T00:00Z", "2030-01-01T00:00Z"),
     ("2030-01-01T00:00Z", "2030-01-01T00:00Z"), ("10000-01-01T00:00Z", None)],
)  # fmt: skip
def test_bad_periods(start: str | None, end: str | None) -> None:
    with pytest.raises(ReportRejected):
        parse(start, end)
