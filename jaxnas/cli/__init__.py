"""The ``jaxnas`` command: ``main`` parses, one module per sub-command (``describe``, ``search``, ``train``,
``bench``) calls the library and prints."""

from jaxnas.cli.main import main

__all__ = ["main"]
