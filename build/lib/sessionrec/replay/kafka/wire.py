"""How item ids are written on the project's topics (DESIGN, Contracts).

An id is text everywhere inside the project (``523117`` from a CSV and
``"523117"`` from JSON name the same item); on the wire it is a JSON integer
when the text is one that reads back as the same text, a string otherwise.
"""

from __future__ import annotations


def wire_item(raw: str) -> int | str:
    """An item id as it goes on the wire: an int when the text is one that reads back as the same text."""
    return int(raw) if is_int_text(raw) else raw


def is_int_text(text: str) -> bool:
    """ASCII digits without a leading zero (or "0"), optionally negative: int() and back gives the same text."""
    digits = text[1:] if text.startswith("-") else text
    return digits.isascii() and digits.isdigit() and (digits == "0" or digits[0] != "0") and text != "-0"
