"""The one error type users see: it names what is wrong and how to fix it."""


class MtlensError(ValueError):
    """A problem the user can fix (bad input, bad config, missing file). The CLI prints it as one line."""
