"""``onsale bench report``: regenerates docs/performance.md in one command.

Everything in the report is measured in one run on this machine, and every figure that
matters is a ratio to a baseline of the same run (a shared machine drifts; ratios hold).
Measuring (:mod:`onsale.bench.measure`, with py-spy in :mod:`onsale.bench.profile`) and
rendering (:mod:`onsale.bench.render`) are separate: the Markdown is tested on fake
measurements without any server.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec

from onsale.bench.figures import progress
from onsale.bench.measure import TAG, measure_all
from onsale.bench.render import render

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "docs" / "performance.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="the Markdown to write")
    parser.add_argument("--users", type=int, default=1000, help="stampede buyers")
    parser.add_argument("--tickets", type=int, default=300, help="stampede tickets")
    parser.add_argument("--duration", type=float, default=90, help="stampede seconds at most")
    parser.add_argument("--workers", type=int, default=2, help="workers: stampede, baselines")
    parser.add_argument("--baseline-users", type=int, default=64, help="Locust baseline users")
    parser.add_argument("--baseline-seconds", type=float, default=15, help="per baseline")
    parser.add_argument("--clients", type=int, default=64, help="bench clients (queue, holds)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per bench endpoint")
    parser.add_argument("--visitors", type=int, default=60_000, help="visitors polled")
    parser.add_argument("--admitted", type=int, default=2_000, help="admitted buyers holding")
    parser.add_argument("--profile-seconds", type=float, default=5.0, help="py-spy duration")
    parser.add_argument("--skip-stampede", action="store_true", help="sections 2-4 only")
    parser.add_argument("--json", action="store_true", help="also the measurements as JSON")


#: A line in the document after which it is kept as it is: figures of benchmarks that
#: ``onsale bench report`` does not run (``onsale bench reports``), pasted by hand.
KEEP = "<!-- onsale bench report keeps what follows: figures pasted by hand -->"


def kept(path: Path) -> str:
    """What ``path`` holds from :data:`KEEP` on (with the marker), or ``""``."""
    text = path.read_text() if path.exists() else ""
    at = text.find(KEEP)
    return "\n" + text[at:] if at >= 0 else ""


def _command(argv: Sequence[str]) -> str:
    return "onsale bench report" + "".join(f" {a}" for a in argv)


async def main(args: argparse.Namespace) -> int:
    began = time.monotonic()
    argv = sys.argv[sys.argv.index("report") + 1 :] if "report" in sys.argv else []
    m = await measure_all(args, _command(argv))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(m) + kept(out))
    if args.json:
        print(msgspec.json.encode(m).decode())
    progress(f"wrote {out} in {time.monotonic() - began:.0f} s", TAG)
    return 0
