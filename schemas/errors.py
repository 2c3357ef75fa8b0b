"""Errors raised by ``schemas``.

Hierarchy::

    * SchemasError
      + SchemaValidationError   a document does not match its schema (422)
      + UnknownSchema           unknown record type or schema major (422)
      + InvalidPack             an instrument pack file is malformed (start-up)

APPSEC: no error here ever carries a submitted value. Messages are data
written by us; they name fields and rules only. ``SchemaValidationError`` is
raised outside marshmallow's ``except`` block, so marshmallow's exception,
which keeps the raw input in ``.data``, never rides along as its cause or
context into a log or traceback.
"""

from __future__ import annotations

from typing import Any

__all__ = ['InvalidPack', 'SchemaValidationError', 'SchemasError', 'UnknownSchema']


class SchemasError(Exception):
    """Base class of every error raised by ``schemas``."""


class SchemaValidationError(SchemasError):
    """A document failed validation.

    Attributes:
        messages: Field name to a list of messages; nested dicts for nested
            fields and list items; ``_schema`` for document-level rules.
    """

    def __init__(self, messages: dict[Any, Any]) -> None:
        super().__init__('The document does not match its schema.')
        self.messages = messages


class UnknownSchema(SchemasError):
    """The record type or schema major version is not known."""


class InvalidPack(SchemasError):
    """An instrument pack file was refused.

    Attributes:
        path: The pack file (a deployment path, never client data).
        messages: Field name to a list of messages, as for documents.
    """

    def __init__(self, path: str, messages: dict[Any, Any]) -> None:
        super().__init__(f'Instrument pack {path} was refused: {messages}')
        self.path = path
        self.messages = messages
