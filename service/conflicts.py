"""Records with conflicting revisions, listed for their owners' team.

A record belongs to its owner's team; advocates and supervisors see the
conflicted records of their own team only, and the listing carries ids and
revisions, never a value (DESIGN.md section 1: case data belongs to the
team's case staff).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sync.filtering import ENVELOPE_PREFIX

__all__ = ['ConflictListing', 'conflicted_records']


def conflicted_records(
    couch, records_db: str, owners_seen: Callable[[set[str]], set[str]], *,
    page_size: int = 500,
) -> list[dict[str, Any]]:
    """Return the conflicted records of the owners the caller may see (ids only).

    One pass over the records' ``_changes`` feed with every leaf
    revision (``style=all_docs``): a live record with more than one leaf
    is conflicted. ``conflicts`` are its live losing leaves;
    ``deleted_conflicts`` the deleted ones, so a deletion on one tablet
    that lost to an edit on another stays visible (``_all_docs`` with
    ``conflicts`` lists live leaves only, and pouchdb-server knows no
    ``deleted_conflicts``).

    Args:
        couch: The CouchDB client.
        records_db: The records database's physical name.
        owners_seen: Given the owners of conflicted records, returns
            those whose records the caller may see (a team's workers).
        page_size: Changes read per upstream request.

    Returns:
        ``[{"id", "rev", "conflicts", "deleted_conflicts"}]`` by id.
    """
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    since: Any = 0
    while True:
        page = couch.changes(records_db, since=since, limit=page_size, include_docs=True,
                             style_all_docs=True, conflicts=True)
        rows = page.get('results', [])
        for row in rows:
            doc = row.get('doc') or {}
            doc_id = row.get('id', '')
            leaves = [change.get('rev') for change in row.get('changes', [])]
            if (row.get('deleted') or len(leaves) < 2 or doc_id.startswith('_')
                    or doc_id.startswith(ENVELOPE_PREFIX)):
                found.pop(doc_id, None)
                continue
            live = list(doc.get('_conflicts', []))
            found[doc_id] = (str(doc.get('owner') or ''), {
                'id': doc_id, 'rev': doc.get('_rev'), 'conflicts': live,
                'deleted_conflicts': sorted(
                    rev for rev in leaves if rev != doc.get('_rev') and rev not in live)})
        since = page.get('last_seq', since)
        if len(rows) < page_size:
            break
    seen = owners_seen({owner for owner, _entry in found.values() if owner})
    return [entry for doc_id, (owner, entry) in sorted(found.items()) if owner in seen]


class ConflictListing:
    """Lists a team's conflicted records.

    Args:
        couch: The CouchDB client.
        records_db: The records database's physical name.
        directory_db: The directory database's physical name (users' teams).
    """

    def __init__(self, couch, records_db: str, directory_db: str) -> None:
        self._couch = couch
        self._records_db = records_db
        self._directory_db = directory_db

    def for_team(self, team: str | None) -> list[dict[str, Any]]:
        """Return the conflicted records whose owners are in ``team`` (none without one)."""
        if team is None:
            return []

        def owners_seen(owners: set[str]) -> set[str]:
            teams = self._teams_of(owners)
            return {owner for owner in owners if teams.get(owner) == team}

        return conflicted_records(self._couch, self._records_db, owners_seen)

    def _teams_of(self, usernames: set[str]) -> dict[str, Any]:
        """Return ``{username: team}`` of existing users, in one read."""
        if not usernames:
            return {}
        rows = self._couch.all_docs(self._directory_db,
                                    keys=[f'user:{name}' for name in sorted(usernames)],
                                    include_docs=True)
        return {row['doc']['username']: row['doc'].get('team')
                for row in rows if row.get('doc') and row['doc'].get('username')}
