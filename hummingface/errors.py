"""The one exception family users see.

A :class:`UserError` means the input, not the program, is at fault. Its message is a single sentence that says
what is wrong and, where it helps, what would be right. The CLI prints it and exits with status 2 (no
traceback); the app re-raises it as ``gr.Error``.
"""


class UserError(ValueError):
    """Bad input from the user: a file, an argument or a setting. ``str(error)`` is one sentence."""
