"""Errors a user can act on. The CLI prints their message on one line; no traceback."""


class ShstkError(Exception):
    """A problem with the user's input or environment, reported as one line."""

    exit_code = 2


class UsageError(ShstkError):
    """Options that make no sense together, or a malformed argument."""


class CannotRun(ShstkError):
    """The program cannot be started: exit 126 as a shell does (127: it does not exist)."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.exit_code = 127 if missing else 126


class BadElf(ShstkError):
    """A file that is not a usable ELF object (truncated, corrupted, wrong machine)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
