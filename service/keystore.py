"""The key store: key documents in the config, directory and keyvault databases.

The server only stores and hands out public or sealed material (the org
signer, the signed manifest, advocate keys, certificates, grants and
``rk:`` envelopes). It never holds an unsealed org private key. The rules
here are the server's own: which manifest may follow which, what a manifest
change amounts to in the audit log, and how many envelopes each key version
still seals. Refusals are the domain errors below; ``service.errors`` maps
them to HTTP.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import fle
import keys

__all__ = ['ENVELOPE_PREFIX', 'GrantExists', 'KeyStore', 'KeyStoreError', 'MANIFEST_ID',
           'NoSigner', 'SIGNER_ID', 'census', 'manifest_events', 'manifest_succession_problem']

SIGNER_ID = 'org-signer'
MANIFEST_ID = 'key-manifest'
ENVELOPE_PREFIX = fle.ENVELOPE_PREFIX
#: Key statuses in the only order a version may move through them.
_STATUS_RANK = {'active': 0, 'decrypt-only': 1, 'retired': 2}
#: Grant members that carry the sealed key; a stored grant never changes them.
_SEALED_GRANT = ('kek', 'advocate', 'apk', 'suite', 'enc', 'ct')


class KeyStoreError(Exception):
    """A key-store refusal; its message names key ids and staff, never a value."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoSigner(KeyStoreError):
    """No org signing key is pinned yet, so nothing signed can be checked."""

    def __init__(self) -> None:
        super().__init__('No org signing key is pinned yet.')


class GrantExists(KeyStoreError):
    """A live grant of the same version and person holds another sealed key."""


def manifest_succession_problem(previous: dict[str, Any] | None, new: dict[str, Any],
                                org: str) -> tuple[str, str] | None:
    """Say why ``new`` may not follow ``previous``, or return None.

    A manifest names the service's own org; it keeps every key version the
    previous one listed (a version leaves use through the retire flow, which
    keeps it listed as ``retired``), never changes a listed version's public
    key, never brings back a retired one, and never moves a version back
    from decrypt-only to active. So a key id, once used, names one key for
    good: an envelope or grant sealed under it can never be confused with
    another key's.

    Returns:
        ``(code, description)`` of the first rule broken, or None.
    """
    if new['org'] != org:
        return 'org_mismatch', "The manifest names another org than this service's."
    if previous is None:
        return None
    entries = {entry['kid']: entry for entry in new['keys']}
    for old in previous['keys']:
        entry = entries.get(old['kid'])
        if entry is None:
            return ('kid_dropped', f"The manifest drops key version {old['kid']}; retire it "
                                   'with `fieldvault keys retire` instead.')
        if entry.get('pub') is not None and entry.get('pub') != old.get('pub'):
            return ('kid_reused', f"Key version {old['kid']} already names another key; "
                                  'choose a new key id.')
        if _STATUS_RANK[entry['status']] < _STATUS_RANK[old['status']]:
            return ('status_regressed', f"Key version {old['kid']} cannot go back from "
                                        f"{old['status']} to {entry['status']}.")
    return None


def manifest_events(old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple[str, dict]]:
    """Return the lifecycle audit events a manifest change amounts to.

    ``key_rotated`` when the active key changes (with the old key's
    ``accept_until``), ``key_retired`` for each key that becomes retired.
    """
    events: list[tuple[str, dict]] = []
    if old is None:
        return events
    old_status = {entry['kid']: entry for entry in old['keys']}
    old_active = next(entry['kid'] for entry in old['keys'] if entry['status'] == 'active')
    new_active = next(entry['kid'] for entry in new['keys'] if entry['status'] == 'active')
    if old_active != new_active:
        demoted: dict[str, Any] = next(
            (entry for entry in new['keys'] if entry['kid'] == old_active), {})
        events.append(('key_rotated', {'from': old_active, 'to': new_active,
                                       'seq': new['seq'],
                                       'accept_until': demoted.get('accept_until')}))
    for entry in new['keys']:
        before = old_status.get(entry['kid'])
        if entry['status'] == 'retired' and (before is None or before['status'] != 'retired'):
            events.append(('key_retired', {'kid': entry['kid'], 'seq': new['seq']}))
    return events


def envelope_rows(couch, keyvault_db: str, rkids: Iterable[str]) -> list[dict[str, Any]]:
    """Return the key vault's ``_all_docs`` rows of the ``rk:`` envelopes of ``rkids``.

    Each row carries the document (``doc``) when the envelope exists, and
    ``value.deleted`` when a sealing shredded it.
    """
    return couch.all_docs(keyvault_db, keys=[fle.envelope_id(rkid) for rkid in rkids],
                          include_docs=True)


def census(couch, keyvault_db: str, *, page_size: int = 1000) -> dict[str, int]:
    """Count ``rk:`` envelopes per ``kek``, paging with bounded memory."""
    counts: Counter[str] = Counter()
    for doc in couch.iter_prefix(keyvault_db, ENVELOPE_PREFIX, page_size=page_size):
        counts[str(doc.get('kek'))] += 1
    return dict(sorted(counts.items()))


class KeyStore:
    """Reads and writes key documents in the config, directory and keyvault databases.

    Args:
        services: The app's collaborators.
    """

    def __init__(self, services) -> None:
        self._couch = services.couch
        self.org = services.config.org
        # The signer and manifest are read on every push batch of envelopes
        # and every manifest GET: the watch keeps them while the config
        # feed reports no change (see sync.watch).
        self._config_watch = services.config_watch
        self._config_db = services.db('config')
        self._directory_db = services.db('directory')
        self._keyvault_db = services.db('keyvault')
        # The verified body of the manifest revision last read, so a warm
        # push batch or desk submission costs no signature check.
        self._verified: tuple[tuple[str, str], dict[str, Any]] | None = None

    def signer(self) -> dict[str, Any] | None:
        """Return the pinned org signer document, if any."""
        return self._config_watch.get(SIGNER_ID)

    def signer_public(self) -> str:
        """Return the pinned signer public key.

        Raises:
            NoSigner: No org signing key is pinned yet.
        """
        signer = self.signer()
        if signer is None:
            raise NoSigner()
        return signer['public']

    def manifest(self) -> dict[str, Any] | None:
        """Return the signed manifest document, if published."""
        return self._config_watch.get(MANIFEST_ID)

    def manifest_body(self) -> dict[str, Any] | None:
        """Return the verified body of the current manifest, if published.

        The body is verified once per manifest revision and signer.

        Raises:
            NoSigner: A manifest exists but no signer is pinned.
            InvalidManifest: The stored manifest does not verify.
        """
        current = self.manifest()
        if current is None:
            return None
        signer = self.signer_public()
        verified = self._verified
        if verified is not None and verified[0] == (current['_rev'], signer):
            return verified[1]
        body = keys.verify_manifest(current['signed'], signer)
        self._verified = ((current['_rev'], signer), body)
        return body

    def advocate_key(self, advocate: str) -> dict[str, Any] | None:
        return self._couch.get_or_none(self._directory_db, f'apk:{advocate}')

    def put_config(self, doc: dict[str, Any]) -> None:
        try:
            self._couch.put(self._config_db, doc)
        finally:
            # This instance sees its own write at once, not after the feed.
            self._config_watch.forget(doc['_id'])

    def put_directory(self, doc: dict[str, Any]) -> None:
        self._couch.put(self._directory_db, doc)

    def advocate_keys(self) -> list[dict[str, Any]]:
        return list(self._couch.iter_prefix(self._directory_db, 'apk:'))

    def grants_for(self, advocate: str) -> list[dict[str, Any]]:
        return [doc for doc in self._couch.iter_prefix(self._keyvault_db, 'grant:')
                if doc.get('advocate') == advocate]

    def holders_of(self, kek: str) -> list[dict[str, Any]]:
        """Return the grants and shares of one key version."""
        return list(self._couch.iter_prefix(self._keyvault_db, f'grant:{kek}:'))

    def put_grants(self, grants: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store grants; one identical to the stored grant is left as it is.

        Raises:
            GrantExists: A live grant of the same version and person holds
                another sealed key (a key id is never reused, and a stray
                grant would make that person's keyring fail to load); remove
                it first (``keys remove-grant``).
        """
        rows = self._couch.all_docs(self._keyvault_db, keys=[grant['_id'] for grant in grants],
                                    include_docs=True)
        existing = {row['id']: row for row in rows if 'value' in row}
        docs = []
        for grant in grants:
            doc = {name: value for name, value in grant.items() if name != '_rev'}
            row = existing.get(doc['_id'])
            stored = row.get('doc') if row else None
            if stored is not None:
                if any(stored.get(name) != doc.get(name) for name in _SEALED_GRANT):
                    raise GrantExists(
                        f"A grant of {doc['kek']} to {doc['advocate']} already exists with "
                        'another key: a key id is never reused, so choose a new one, or '
                        'remove the stray grant first.')
                continue
            if row is not None:
                doc['_rev'] = row['value']['rev']  # re-granting after a removal
            docs.append(doc)
        return self._couch.bulk_docs(self._keyvault_db, docs) if docs else []
