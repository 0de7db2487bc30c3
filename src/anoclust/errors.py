"""Exceptions that carry a message meant for the user.

The CLI prints an ``AnoclustError`` as one line and exits with code 2; anything else is a bug
and keeps its traceback.
"""


class AnoclustError(Exception):
    """A problem the user can fix; the message says what is wrong and how to fix it."""


class ImageReadError(AnoclustError):
    """One image could not be decoded; callers skip it and report the reason."""


class WeightsError(AnoclustError):
    """Backbone weights are missing, unreadable or do not match their known hash."""
