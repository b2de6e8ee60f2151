"""py-spy for ``onsale bench report``: recording a gateway worker, and the summary of what
it recorded (``py-spy record -f raw``)."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import msgspec

#: Frames kept in the profile summary: ours and the stack we run on.
PACKAGES = ("onsale", "litestar", "redis", "uvicorn")


class Frame(msgspec.Struct):
    name: str
    #: Share of samples with this function anywhere on the stack.
    inclusive: float
    #: Share of samples where it is the deepest onsale/litestar/redis/uvicorn frame.
    own: float


class Profile(msgspec.Struct):
    load: str
    seconds: float
    samples: int
    frames: list[Frame]
    #: Why there is no profile, if there is none.
    note: str = ""


def spy() -> str | None:
    """The py-spy executable, beside this Python or on the PATH; None if not installed."""
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def recorder(
    spy: str, seconds: float, raw: Path, log: Path
) -> Callable[[int], Coroutine[Any, Any, None]]:
    """``record(pid)``: py-spy on process ``pid`` for ``seconds`` (after a second of
    warm-up), its raw output to ``raw``, its own messages to ``log``."""

    async def record(pid: int) -> None:
        await asyncio.sleep(1.0)  # past the warm-up
        with open(log, "wb") as out:
            proc = await asyncio.create_subprocess_exec(
                spy,
                "record",
                "-f",
                "raw",
                "-r",
                "200",
                "-d",
                str(int(seconds)),
                "-p",
                str(pid),
                "-o",
                str(raw),
                "--nonblocking",
                stdout=out,
                stderr=out,
            )
            await proc.wait()

    return record


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _short(file: str) -> str | None:
    """``package/module.py`` for frames of the kept packages, else None."""
    path = file.replace("\\", "/")
    if "site-packages/" in path:
        path = path.rsplit("site-packages/", 1)[1]
    elif "/onsale/" in path:
        path = "onsale/" + path.rsplit("/onsale/", 1)[1]
    top = path.split("/", 1)[0]
    return path if top in PACKAGES else None


def summarise(raw: str, top: int = 15) -> tuple[int, list[Frame]]:
    """(samples, frames) from ``py-spy record -f raw`` output: one stack a line, frames
    separated by ``;``, the sample count last."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        kept = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame.strip())
            if not match:
                continue
            short = _short(match["file"])
            if short:
                kept.append(f"{short.removesuffix('.py')}:{match['func']}")
        for name in set(kept):
            inclusive[name] += count
        if kept:
            own[kept[-1]] += count
    if not total:
        return 0, []
    names = sorted(inclusive, key=lambda n: (-own[n], -inclusive[n]))[:top]
    frames = [Frame(n, inclusive[n] / total, own[n] / total) for n in names]
    return total, sorted(frames, key=lambda f: -f.inclusive)
