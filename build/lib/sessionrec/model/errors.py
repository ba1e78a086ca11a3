"""The one error for input that cannot be used: commands print its message as one line."""


class DataError(ValueError):
    """Input that cannot be used; the message names the file (or setting) and the problem."""
