"""``onsale bench report``'s rendering and profile summary, on fake measurements: no servers,
so the Markdown cannot silently break between the (slow) real runs."""

from __future__ import annotations

from pathlib import Path

from onsale.bench import queue, report
from onsale.bench.measure import Baseline, Machine, Measurements, Route, ShardRow, Stampede
from onsale.bench.profile import Frame, Profile, summarise
from onsale.bench.render import md_table, render


def _row(endpoint: str, rps: float, bare: float) -> queue.Row:
    return queue.Row(endpoint, 64, rps, 5.0, 20.0, round(rps / bare, 3), 0)


def _measurements(*, cluster_ok: bool = True) -> Measurements:
    routes = [
        Route("GET /api/events/[id]/queue", 9000, 0, 450.0, 12.0, 95.0),
        Route("POST /api/events/[id]/holds", 300, 0, 30.0, 20.0, 180.0),
        Route("Aggregated", 9300, 0, 480.0, 12.0, 120.0),
    ]
    return Measurements(
        command="onsale bench report",
        machine=Machine(
            "2025-01-01 00:00 UTC",
            2,
            "Fake CPU",
            "Linux 6",
            "3.11.7",
            "6.2.6",
            "16.2",
            "locust 2.47.0",
        ),
        runtime_s=321.0,
        stampede=Stampede(1000, 300, 2, 20.0, 15.0, 14.5, routes, ["PASS  never oversold"], 0),
        bare=Baseline("bare Litestar (uvicorn)", 64, 15, Route("GET /bare", 1, 0, 2000, 25, 60)),
        ceiling=Baseline("canned bytes", 64, 15, Route("GET /bare", 1, 0, 2500.0, 20.0, 40.0)),
        queue_1=[
            _row("bare", 10000, 10000),
            _row("status", 5000, 10000),
            _row("join", 5500, 10000),
            _row("hold", 4000, 10000),
        ],
        queue_2=[
            _row("bare", 12000, 12000),
            _row("status", 6000, 12000),
            _row("join", 6000, 12000),
            _row("hold", 4400, 12000),
        ],
        bench_clients=64,
        bench_seconds=5.0,
        profile=Profile(
            "the hold load (64 clients)",
            5.0,
            1000,
            [Frame("uvicorn/main:run", 0.9, 0.05), Frame("onsale/inventory/engine:hold", 0.3, 0.1)],
        ),
        shards=[
            ShardRow("1 Redis", 4000.0, 6.0, 40.0),
            ShardRow("3-primary Redis Cluster", 3000.0, 8.0, 50.0)
            if cluster_ok
            else ShardRow("3-primary Redis Cluster", None, None, None, note="not measured: boom"),
        ],
    )


def test_render_has_every_section_and_the_ratios() -> None:
    text = render(_measurements())
    assert text.startswith("# Performance\n")
    assert "```\nonsale bench report\n```" in text
    for heading in ("## 1.", "## 2.", "## 3.", "## 4.", "### Gateway workers", "### Redis shards"):
        assert heading in text
    assert "2 cores (Fake CPU)" in text and "Redis 6.2.6" in text and "Postgres 16.2" in text
    assert "bare Litestar / generator ceiling: **0.80x** req/s" in text
    # 450 / 2000 req/s and 95 / 60 p99 for the busiest stampede route.
    assert "| GET /api/events/[id]/queue | 9,000 | 0 | 450.0 | 12 | 95 | 0.23x | 1.58x |" in text
    assert "| status | 5,000 | 5.00 | 20.00 | 0.50 | 0 |" in text
    assert "| hold | 4,000 | 4,400 | 1.10x |" in text
    assert "Cluster / one Redis: 0.75x" in text
    assert "| `onsale/inventory/engine:hold` | 30.0% | 10.0% |" in text
    assert text.count("**Reading it.**") == 5
    assert "generator, not the server stack, is the limit" in text  # 2000 / 2500 = 80%
    # Every table line has as many cells as its header.
    for block in text.split("\n\n"):
        rows = [ln for ln in block.splitlines() if ln.startswith("|")]
        if rows:
            assert len({ln.count(" | ") for ln in rows}) == 1, block


def test_render_says_what_was_not_measured() -> None:
    m = _measurements(cluster_ok=False)
    m.stampede = m.bare = m.ceiling = None
    m.profile = Profile("holds", 0, 0, [], note="py-spy is not installed")
    text = render(m)
    assert "## 1. The stampede" in text and "Not measured in this run." in text
    assert "Not profiled in this run: py-spy is not installed." in text
    assert "| 3-primary Redis Cluster | n/a | n/a | n/a | not measured: boom |" in text
    assert "The cluster row was not measured: not measured: boom." in text


def test_md_table_aligns_figures_right() -> None:
    assert md_table(["a", "b"], [["x", "1"]]) == "| a | b |\n| --- | ---: |\n| x | 1 |"


def test_summarise_py_spy_raw() -> None:
    raw = "\n".join(
        [
            "run (uvicorn/main.py:580);hold (onsale/inventory/engine.py:90);"
            "send (asyncio/streams.py:10) 30",
            "run (/x/site-packages/uvicorn/main.py:581);handle (litestar/app.py:5) 60",
            "<module> (other.py:1) 10",
            "not a sample line",
        ]
    )
    samples, frames = summarise(raw)
    assert samples == 100
    by_name = {f.name: f for f in frames}
    assert by_name["uvicorn/main:run"].inclusive == 0.9
    assert by_name["uvicorn/main:run"].own == 0.0
    assert by_name["onsale/inventory/engine:hold"].own == 0.3  # deepest kept frame
    assert by_name["litestar/app:handle"].inclusive == 0.6
    assert frames[0].name == "uvicorn/main:run"


def test_regeneration_keeps_what_was_pasted_by_hand(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    assert report.kept(doc) == ""  # no document yet
    doc.write_text("# Performance\n\nold figures\n\n" + report.KEEP + "\n\n## 5. By hand\n\nx\n")
    assert report.kept(doc) == "\n" + report.KEEP + "\n\n## 5. By hand\n\nx\n"
    doc.write_text("# Performance\n\nno marker\n")
    assert report.kept(doc) == ""
