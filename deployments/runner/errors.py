"""The sandbox's error, shared by its modules."""


class SandboxError(Exception):
    """The job could not be started as asked (not: the script failed)."""
