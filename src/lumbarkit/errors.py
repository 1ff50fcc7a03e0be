"""Project exceptions: user-facing errors carry a one-line message."""


class LumbarkitError(Exception):
    """An input or usage problem the user can fix; the CLI prints its message on one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class InputError(LumbarkitError):
    """The input path, file or image cannot be used (missing, corrupt, wrong kind)."""


class SeriesSelectionError(LumbarkitError):
    """A DICOM study holds several series and none could be chosen unambiguously."""


class ModelError(LumbarkitError):
    """A model folder is missing, corrupt or does not fit the scan."""
