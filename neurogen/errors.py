"""Errors raised for bad specs; each one knows the file and line it is about."""


class SpecError(Exception):
    """A problem in a spec file, reported as ``path:line: message``."""

    def __init__(self, message, path=None, line=None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line

    def located(self, path=None, line=None):
        """Return this error with a path/line filled in where it has none."""
        return SpecError(
            self.message,
            self.path if self.path is not None else path,
            self.line if self.line is not None else line,
        )

    def __str__(self):
        where = str(self.path) if self.path is not None else "<spec>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.message}"


class NeurogenWarning(UserWarning):
    """A plausible mistake in a model or its options that neurogen can still run
    (e.g. a rate table over currents where the model never fires); the message
    names the fix."""
