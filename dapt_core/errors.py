"""Errors a user can act on. Every message says what went wrong and what to do next.

The command line prints these as one line without a traceback; the app shows them as
messages. Anything else that escapes is a bug and keeps its traceback.
"""


class DaptError(Exception):
    """Base class for problems caused by input, settings or environment, not by a bug."""


class DataError(DaptError):
    """The images or folders given cannot form a task (too few classes, empty class, ...)."""


class ImageRejected(DaptError):
    """One file cannot be used as an image; the message is the reason shown to the user."""


class BackboneUnavailable(DaptError):
    """The requested CLIP weights cannot be loaded here (offline, missing file, unsupported)."""


class ConfigError(DaptError):
    """A tuning setting is out of range or inconsistent with the chosen method or backbone."""


class PromptFileError(DaptError):
    """A prompt file is damaged, of an unknown version, or does not fit the given model."""


class Cancelled(DaptError):
    """A run was cancelled by the user; nothing it would have saved was written."""
