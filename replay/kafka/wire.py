"""How item ids are written on the clicks topic (DESIGN, Contracts: ``item_id`` is int|str).

An id is text everywhere inside the project (``523117`` from a CSV and
``"523117"`` from JSON name the same item). A click goes on the wire with a
JSON integer when the text is one that reads back as the same text, a string
otherwise; what the project itself sends about items (recommendations, the
API) names them by that text, always a string.
"""

from __future__ import annotations


def is_int_text(text: str) -> bool:
    """ASCII digits without a leading zero (or "0"), optionally negative: int() and back gives the same text."""
    digits = text[1:] if text.startswith("-") else text
    return digits.isascii() and digits.isdigit() and (digits == "0" or digits[0] != "0") and text != "-0"
