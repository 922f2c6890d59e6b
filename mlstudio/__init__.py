"""ML Studio's Python SDK and CLI.

It talks to a studio over HTTP only and never imports Django, so it installs on
its own wherever a data scientist works. (The SDK is built in a later issue; the
REST API it will use is documented in README.md.)
"""

__version__ = "0.1.0"
