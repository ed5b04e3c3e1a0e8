"""The command line: thin click commands, one module per command family."""

from .main import main

__all__ = ["main"]
