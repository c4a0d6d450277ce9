"""One flat hierarchy of errors the core raises on purpose."""

from __future__ import annotations


class KeyWatchError(Exception):
    """Base of every error KeyWatch raises deliberately; its message is shown to users."""


class ParseError(KeyWatchError):
    """A record could not be turned into canonical events; the message says why."""


class UnknownFormatError(ParseError):
    """No parser recognises the record, or the format name is not known."""


class ConfigError(KeyWatchError):
    """A configuration file or value is invalid."""


class ModelError(KeyWatchError):
    """A model directory is missing, unverifiable or built for another feature schema."""
