"""Readable result tables (rich) for evaluation reports and benches."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Literal

from rich.console import Console
from rich.table import Table

from sessionrec.model.evaluate import Report

console = Console(width=None if sys.stdout.isatty() else 150)  # tables stay whole when piped


def reports_table(rows: Iterable[tuple[str, str, Report]], title: str = "Next-click evaluation") -> Table:
    """One line per (model, protocol): overall metrics, then the non-repeat ones."""
    table = Table(title=title)
    for name in ("model", "protocol", "targets", "acc@1", "R@5", "R@20", "MRR@20", "non-rep acc@1", "non-rep R@20", "non-rep MRR@20"):
        table.add_column(name, justify="left" if name in ("model", "protocol") else "right")
    for name, protocol, r in rows:
        o, n = r.overall, r.non_repeat
        table.add_row(
            name, protocol, f"{o.targets:,}", f"{o.accuracy_at_1:.4f}", f"{o.recall_at_5:.4f}", f"{o.recall_at_20:.4f}",
            f"{o.mrr_at_20:.4f}", f"{n.accuracy_at_1:.4f}", f"{n.recall_at_20:.4f}", f"{n.mrr_at_20:.4f}",
        )
    return table


def movielens_table(rows: Iterable[dict], stage: Literal["valid", "test"] = "test", n_valid: int = 1) -> Table:
    target = {"test": "last rating", "valid": "second-to-last rating" if n_valid == 1 else f"{n_valid} ratings before the last"}[stage]
    title = f"MovieLens leave-one-out, {target} per user; movies already rated are excluded from the ranking"
    table = Table(title=title)
    for name in ("model", "HR@10", "NDCG@10", "Recall@20", "MRR@20", "users"):
        table.add_column(name, justify="left" if name == "model" else "right")
    for row in rows:
        table.add_row(row["model"], *(f"{row[k]:.4f}" for k in ("hr@10", "ndcg@10", "recall@20", "mrr@20")), f"{row['users']:,}")
    return table


def train_bench_table(record: dict) -> Table:
    """`bench train`: each run in its order, then the medians and their ratio."""
    title = (f"Training on one thread, preset {record['preset']}, {record['epochs']} epochs of {record['clicks']}: "
             f"ours {record['ratio']:.2f}x the official GRU4Rec")
    table = Table(title=title)
    for name in ("run", "implementation", "events", "seconds", "events/s"):
        table.add_column(name, justify="left" if name == "implementation" else "right")
    for number, run in enumerate(record["runs"], start=1):
        table.add_row(str(number), run["implementation"], f"{run['events']:,}", f"{run['seconds']:.2f}", f"{run['events_per_s']:,.0f}")
    table.add_section()
    table.add_row("median", "ours", "", "", f"{record['train_events_per_s']:,.0f}")
    table.add_row("median", "official", "", "", f"{record['official_train_events_per_s']:,.0f}")
    table.add_row("ratio", "ours / official", "", "", f"{record['ratio']:.2f}")
    return table
