"""The SDK's version, on the bottom floor: the HTTP client's User-Agent needs it, and
importing it from the package's ``__init__`` would make the client depend on everything."""

__version__ = "0.1.0"
