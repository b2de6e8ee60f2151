"""One check's verdict, and the report of a run."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Status(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


class Check(msgspec.Struct, frozen=True):
    #: A stable dotted name (``redis.eviction``), what tests and runbooks refer to.
    name: str
    status: Status
    #: What was found.
    detail: str
    #: What to do about it (WARN and FAIL).
    fix: str = ""

    def line(self) -> str:
        todo = f" -> {self.fix}" if self.fix and self.status is not Status.PASS else ""
        return f"{self.status.value}  {self.name:<24} {self.detail}{todo}"


def passed(name: str, detail: str) -> Check:
    return Check(name, Status.PASS, detail)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.FAIL, detail, fix)


class Report(msgspec.Struct):
    checks: list[Check]
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        return sum(1 for c in self.checks if c.status is status)

    @property
    def failed(self) -> bool:
        return self.count(Status.FAIL) > 0

    def by_name(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def summary(self) -> str:
        counts = ", ".join(f"{self.count(s)} {s.value}" for s in Status)
        failing = [c.name for c in self.checks if c.status is Status.FAIL]
        tail = f"; failing: {', '.join(failing)}" if failing else ""
        return f"preflight: {counts} in {self.seconds:.1f} s{tail}"

    def text(self) -> str:
        return "\n".join([*(c.line() for c in self.checks), self.summary()])
