"""fireorder desktop application and command line."""

__version__ = "0.1.0"
