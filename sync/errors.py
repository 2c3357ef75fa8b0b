"""Errors of the sync package.

The tree::

    SyncError
    ├── DatabaseUnavailable      the backing CouchDB cannot be reached or answers 5xx
    └── CouchDBError             CouchDB answered with an error status
        ├── DocumentNotFound     404
        ├── DocumentConflict     409 (stale ``_rev``)
        └── PreconditionFailed   412 (for example, database already exists)

The gateway's refusals of a request (``UnknownDatabase``, ``BadRequest`` and
its ``TooManyDocuments``) are apart from the tree: they say what the device
asked wrongly, not what the database did.

None of them carries a document body: messages name the database and the
status, never a value, so they are safe to log.
"""

from __future__ import annotations

__all__ = [
    'BadRequest',
    'CouchDBError',
    'DatabaseUnavailable',
    'DocumentConflict',
    'DocumentNotFound',
    'PreconditionFailed',
    'SyncError',
    'TooManyDocuments',
    'UnknownDatabase',
]


class SyncError(Exception):
    """Base of every sync error."""


class DatabaseUnavailable(SyncError):
    """The backing CouchDB is down, unreachable or overloaded."""


class CouchDBError(SyncError):
    """CouchDB answered a request with an error status.

    Attributes:
        status: The HTTP status CouchDB answered.
        error: CouchDB's ``error`` token, such as ``not_found``.
    """

    def __init__(self, status: int, error: str, context: str) -> None:
        super().__init__(f'{context}: {status} {error}')
        self.status = status
        self.error = error


class DocumentNotFound(CouchDBError):
    """The document or database does not exist."""


class DocumentConflict(CouchDBError):
    """The write named a stale revision."""


class PreconditionFailed(CouchDBError):
    """The request's precondition failed (a database already exists)."""


class UnknownDatabase(Exception):
    """The path names a database devices do not replicate."""


class BadRequest(Exception):
    """A malformed replication request; the message names the parameter."""


class TooManyDocuments(BadRequest):
    """A bulk request names more documents than one request may carry."""
