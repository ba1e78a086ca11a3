"""A run report: the timeline of a run as a self-contained HTML page (the dashboard, frozen) and a PNG.

The HTML is the dashboard's own page with plotly.js and the data written in,
so it opens anywhere without a server or the internet. The PNG is drawn with
matplotlib's Agg backend, which needs no browser (plotly's image export does):
online accuracy per time bucket with the model's pointer moves marked,
throughput, and latency, against seconds since the run began.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sessionrec.stream.watch.page import frozen_page

ACCURACY = (("hr@1", "HR@1", "#1f77b4"), ("hr@20", "HR@20", "#2ca02c"), ("mrr@20", "MRR@20", "#d62728"))
EVENT_COLOURS = {"promoted": "#1b7f3b", "rolled back": "#c62828", "pinned": "#a26b00"}


def write_report(timeline: dict[str, Any], folder: Path, title: str) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.png`` into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    page, png = folder / "report.html", folder / "report.png"
    page.write_text(frozen_page(title, timeline))
    draw_png(timeline, png, title)
    return page, png


def draw_png(timeline: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    b = timeline["buckets"]
    start = b["t"][0] if b["t"] else timeline["now"]
    x = [t - start + timeline["bucket_s"] / 2 for t in b["t"]]  # the middle of each bucket
    fig, (acc, rate, lat) = plt.subplots(3, 1, figsize=(10, 8.5), sharex=True, height_ratios=(2.2, 1, 1), layout="constrained")
    fig.suptitle(title, fontsize=12, x=0.01, ha="left")
    for key, label, colour in ACCURACY:
        acc.plot(x, _gaps(b[key]), color=colour, linewidth=1, marker=".", markersize=3, label=f"{label} per {timeline['bucket_s']} s")
        acc.plot(x, _gaps(b[f"{key} running"]), color=colour, linewidth=2, linestyle="--", label=f"{label} running")
    acc.set_ylabel("online rate")
    acc.set_ylim(0, max([0.05, *(v for key, _, _ in ACCURACY for v in b[key] if v is not None)]) * 1.15)
    acc.legend(ncol=3, fontsize=8, loc="lower right")
    rate.plot(x, b["clicks_per_s"], color="#1d2330", linewidth=1.2)
    rate.set_ylabel("clicks/s")
    rate.set_ylim(bottom=0)
    for key, label, colour in (("latency_p50_s", "p50", "#1f77b4"), ("latency_p99_s", "p99", "#ff7f0e")):
        lat.plot(x, [None if v is None else v * 1000 for v in b[key]], color=colour, linewidth=1.2, label=label)
    lat.set_ylabel("latency, ms")
    if any(v for v in b["latency_p99_s"] if v):
        lat.set_yscale("log")
    lat.legend(fontsize=8, loc="upper left")
    lat.set_xlabel("seconds since the first time bucket")
    for event in timeline["events"]:
        colour = EVENT_COLOURS.get(event["event"])
        if colour is None:  # seeding and unpinning change nothing served
            continue
        at = event["at"] - start
        for ax in (acc, rate, lat):
            ax.axvline(at, color=colour, linestyle=":", linewidth=1.2)
        acc.annotate(f"{event['event']} {event['version']}", (at, 1.0), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                     color=colour, ha="right", va="top", xytext=(-2, -2), textcoords="offset points",
                     bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1})
    for ax in (acc, rate, lat):
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _gaps(values: list[float | None]) -> list[float]:
    """None as NaN, which matplotlib leaves as a gap."""
    return [float("nan") if v is None else v for v in values]
