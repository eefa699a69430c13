"""The one exception type for mistakes a user can make."""


class TopoviewerError(Exception):
    """Bad input a user can fix: a wrong file, an unknown layer, a malformed image.

    The message always says what was expected. The CLI prints it on one line and
    exits with code 2; the GUI shows it as a notification and keeps working.
    """
