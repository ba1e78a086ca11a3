"""Readable result tables (rich) for evaluation reports."""

from __future__ import annotations

import sys
from collections.abc import Iterable

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
