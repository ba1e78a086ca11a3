"""Item vocabulary: raw item id <-> dense index, append-only.

Append-only is what lets a model outlive the vocabulary it was trained on: a
model that knows the first ``n`` items stays valid while the live vocabulary
grows behind it, and every index >= n is simply an item it has not learned yet.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class Vocabulary:
    def __init__(self, items: Iterable[str] = ()) -> None:
        self._items: list[str] = []
        self._index: dict[str, int] = {}
        for item in items:
            self.add(item)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item: str) -> bool:
        return item in self._index

    def add(self, item: str) -> int:
        index = self._index.get(item)
        if index is None:
            index = self._index[item] = len(self._items)
            self._items.append(item)
        return index

    def index(self, item: str) -> int | None:
        return self._index.get(item)

    def encode(self, items: Iterable[str]) -> np.ndarray:
        """Indices of ``items``, adding the ones not seen before."""
        return np.fromiter((self.add(i) for i in items), dtype=np.int64)

    def item(self, index: int) -> str:
        return self._items[index]

    @property
    def items(self) -> list[str]:
        return list(self._items)

    def copy(self) -> Vocabulary:
        return Vocabulary(self._items)
