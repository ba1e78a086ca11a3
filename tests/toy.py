"""Hand-built click data shared by the model tests."""

import pandas as pd

from sessionrec.model.data import sort_sessions


def toy_frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return sort_sessions(pd.DataFrame(rows, columns=["session_id", "item_id", "ts"]))


# Three sessions of different lengths and one single click (nothing to predict).
TOY = toy_frame([
    ("a", "1", 10), ("a", "2", 11), ("a", "3", 12), ("a", "2", 13),
    ("b", "4", 5), ("b", "1", 6),
    ("c", "3", 20), ("c", "3", 21), ("c", "5", 22),
    ("d", "9", 1),
])
