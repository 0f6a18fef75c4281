"""The version of the spanledger instrumentation (follows the spanledger distribution)."""

__all__ = ["__version__"]

__version__ = "0.1.0"
