"""Team scoping of case data: a record belongs to its owner's team.

Case staff reach the records of their own team only, and a record outside it
answers exactly like a missing one (``NotOnCaseload``, mapped to 404 by
``service.errors``), so record ids cannot be probed.
"""

from __future__ import annotations

import re
from typing import Any

from schemas.fields import DocumentId

__all__ = ['NotOnCaseload', 'team_record']

_RECORD_ID = re.compile(DocumentId.PATTERN)


class NotOnCaseload(Exception):
    """The record is missing, or belongs to another team (the caller cannot tell)."""


def team_record(couch, records_db: str, directory_db: str, record_id: str,
                team: str | None) -> dict[str, Any]:
    """Return the record when it belongs to ``team``.

    Raises:
        NotOnCaseload: No such record, or one of another team or of an
            owner without a team, or an id that is no record id.
    """
    # APPSEC: only a record id reaches the database; "_all_docs",
    # "_changes", "_design/..." would address something else.
    if not _RECORD_ID.fullmatch(record_id):
        raise NotOnCaseload()
    document = couch.get_or_none(records_db, record_id)
    owner = couch.get_or_none(directory_db, f'user:{document["owner"]}') if document else None
    if document is None or owner is None or owner.get('team') is None \
            or owner.get('team') != team:
        raise NotOnCaseload()
    return document
