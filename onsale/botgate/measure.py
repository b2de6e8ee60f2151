"""What the bot tax costs: solve times in headless Chromium (the vendored widget) and Python.

``python -m onsale.botgate.measure [--difficulties 100000,500000,1000000] [--runs 3]``
prints one JSON line per (solver, difficulty): the worst case (the secret counter at the
difficulty itself: every counter tried) timed, and the hash rate it implies; the mean case
is half the worst. Chromium needs Playwright (the ``dev`` extra) and ``/usr/bin/chromium``.
docs/bot-tax.md has the figures of one run and the arithmetic built on them.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import altcha

from onsale.botgate.gate import ALGORITHM

VENDOR = Path(__file__).resolve().parent.parent / "gateway" / "static" / "vendor"

#: The widget alone on a page: ``window.solve(challenge, workers)`` -> milliseconds.
PAGE = """<!doctype html><meta charset="utf-8"><title>bot tax</title>
<script type="module" src="altcha.min.js"></script>
<script type="module">
await customElements.whenDefined("altcha-widget");
globalThis.$altcha.algorithms.set("SHA-256", () => new Worker("altcha-sha.worker.js"));
window.solve = (challenge, workers) => new Promise((resolve, reject) => {
  const widget = document.createElement("altcha-widget");
  document.body.append(widget);
  const go = () => {
    widget.configure({ challenge, workers, auto: "off", minDuration: 0 });
    const started = performance.now();
    widget.addEventListener("verified", () => { resolve(performance.now() - started);
                                                widget.remove(); });
    widget.addEventListener("statechange", (ev) => {
      if (ev.detail.state === "error") reject(new Error("widget error"));
    });
    widget.verify();
  };
  if (typeof widget.verify === "function") go(); else widget.addEventListener("load", go);
});
window.ready = true;
</script>"""


def worst_case(difficulty: int) -> dict[str, Any]:
    """A challenge whose secret counter is ``difficulty``: a solver tries every counter."""
    made = altcha.create_challenge(
        ALGORITHM, 1, counter=difficulty, hmac_secret="measure", hmac_key_secret="measure"
    )
    challenge: dict[str, Any] = made.to_dict()
    return challenge


def python_ms(difficulty: int) -> float:
    challenge = altcha.Challenge.from_dict(worst_case(difficulty))
    started = time.perf_counter()
    assert altcha.solve_challenge(challenge, timeout=600) is not None
    return (time.perf_counter() - started) * 1000


@contextmanager
def _served() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("altcha.min.js", "altcha-sha.worker.js"):
            shutil.copy(VENDOR / name, root / name)
        (root / "index.html").write_text(PAGE)
        handler = functools.partial(_Quiet, directory=str(root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
        finally:
            server.shutdown()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def chromium_ms(
    difficulties: list[int], runs: int, workers: int, binary: str
) -> dict[int, list[float]]:
    from playwright.sync_api import sync_playwright  # the dev extra: only for this

    out: dict[int, list[float]] = {}
    with _served() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("window.ready === true")
        for d in difficulties:
            out[d] = [
                float(page.evaluate("([c, w]) => window.solve(c, w)", [worst_case(d), workers]))
                for _ in range(runs)
            ]
        browser.close()
    return out


def _row(solver: str, difficulty: int, times_ms: list[float], workers: int) -> dict[str, Any]:
    worst = statistics.median(times_ms)
    return {
        "solver": solver,
        "workers": workers,
        "difficulty": difficulty,
        "worst_s": round(worst / 1000, 3),
        "mean_s": round(worst / 2000, 3),
        "hashes_per_s": round(difficulty / (worst / 1000)),
        "runs": len(times_ms),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--difficulties", default="100000,500000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="the widget's Web Workers, a list")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    difficulties = [int(d) for d in args.difficulties.split(",")]
    for d in difficulties:
        print(json.dumps(_row("python", d, [python_ms(d) for _ in range(args.runs)], 1)))
    if args.no_browser:
        return
    for workers in (int(w) for w in args.workers.split(",")):
        timed = chromium_ms(difficulties, args.runs, workers, args.chromium)
        for d in difficulties:
            print(json.dumps(_row("chromium", d, timed[d], workers)))


if __name__ == "__main__":
    main()
