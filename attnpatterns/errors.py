"""Errors a user can fix. The CLI prints them as one line, with no traceback."""


class UserError(Exception):
    """Bad input or environment: the message says what is wrong and how to fix it (one line)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
