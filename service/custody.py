"""Who holds which org key version: the holder census, pending shares, and
the rule that no staff change leaves a version with live envelopes that only
the recovery key opens.

No falcon here; the resources in ``service/resources/custody.py`` and the
account endpoints call it and turn its answers into HTTP. Metadata only:
nothing here reads a grant's ciphertext, and the server still opens nothing.

* A *holding* is a ``grant:<kek>:<person>`` document in ``keyvault``: an
  admin-signed grant or a share made by another holder (``keys.shares``).
* *Active staff* are enabled users with a data role (advocate or
  supervisor), without the admin role, whose key is certified.
* A version is *live* while the manifest lists it active or decrypt-only;
  every certified active staff member needs every live version (to open
  records not yet rewrapped, and to pass it on): what they lack is a
  *pending share*.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from keys.advocates import RECOVERY_ADVOCATE
from keys.shares import LIVE_STATUSES
from service.keystore import census

__all__ = ['DATA_ROLES', 'Custody', 'leaves_custody']

DATA_ROLES = frozenset({'advocate', 'supervisor'})
GRANT_PREFIX = 'grant:'


def _is_active_staff(user: dict[str, Any] | None, key_doc: dict[str, Any] | None) -> bool:
    if user is None or user.get('disabled'):
        return False
    roles = set(user.get('roles') or ())
    if not roles & DATA_ROLES or 'admin' in roles:
        return False
    return key_doc is not None and key_doc.get('status') == 'certified'


def leaves_custody(user: dict[str, Any], change: dict[str, Any]) -> bool:
    """Return True when ``change`` (a user PATCH) takes ``user`` out of custody.

    Disabling, roles without a data role (or with the admin role), and a
    move to another team all count: supervisors receive only their own
    team's envelopes, so a holder who moves no longer looks after the
    records they held keys for.
    """
    if change.get('disabled') is True:
        return True
    if change.get('roles') is not None:
        roles = set(change['roles'])
        if not roles & DATA_ROLES or 'admin' in roles:
            return True
    return 'team' in change and change['team'] != user.get('team')


class Custody:
    """Reads holdings, users and certified keys to answer custody questions.

    Args:
        couch: CouchDB client.
        keyvault_db: Physical name of the key vault.
        directory_db: Physical name of the directory.
    """

    def __init__(self, couch, keyvault_db: str, directory_db: str,
                 config_db: str | None = None) -> None:
        self._couch = couch
        self._keyvault_db = keyvault_db
        self._directory_db = directory_db
        self._config_db = config_db

    def _active_kid(self) -> str | None:
        """The active version of the published manifest (tablets seal new records to it)."""
        if self._config_db is None:
            return None
        doc = self._couch.get_or_none(self._config_db, 'key-manifest')
        body = ((doc or {}).get('signed') or {}).get('body') or {}
        active = [entry.get('kid') for entry in body.get('keys', ())
                  if isinstance(entry, dict) and entry.get('status') == 'active']
        return active[0] if len(active) == 1 else None

    # -- reading ------------------------------------------------------------

    def holdings(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Return ``{kek: {person: {"type", "via", "shared_by"}}}`` (no ciphertext)."""
        held: dict[str, dict[str, dict[str, Any]]] = {}
        for doc in self._couch.iter_prefix(self._keyvault_db, GRANT_PREFIX):
            kek, person = doc.get('kek'), doc.get('advocate')
            if not isinstance(kek, str) or not isinstance(person, str):
                continue
            held.setdefault(kek, {})[person] = {
                'type': doc.get('type'), 'via': doc.get('via'),
                'shared_by': doc.get('shared_by') or doc.get('granted_by')}
        return held

    def users(self) -> dict[str, dict[str, Any]]:
        """Return every user document by name."""
        return {doc['username']: doc for doc in self._couch.iter_prefix(self._directory_db, 'user:')
                if isinstance(doc.get('username'), str)}

    def key_docs(self) -> dict[str, dict[str, Any]]:
        """Return every enrolled advocate key document by person."""
        return {doc['advocate']: doc for doc in self._couch.iter_prefix(self._directory_db, 'apk:')
                if isinstance(doc.get('advocate'), str)}

    def active_staff(self, users=None, key_docs=None) -> set[str]:
        """Return the names of the active staff (see the module docstring)."""
        users = self.users() if users is None else users
        key_docs = self.key_docs() if key_docs is None else key_docs
        return {name for name, user in users.items()
                if _is_active_staff(user, key_docs.get(name))}

    # -- the census ---------------------------------------------------------

    def report(self, manifest_body: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Return, per key version that is live or still has envelopes, who holds it.

        Each entry: ``kid``, ``status`` (from the manifest, or ``unlisted``),
        ``envelopes``, ``holders`` (active staff holding it, with roles and
        team), ``inactive_holders`` (disabled, revoked or uncertified people
        whose grant still exists), ``recovery`` (the recovery key holds it)
        and ``recovery_only`` (it has envelopes and no active holder).
        """
        counts = census(self._couch, self._keyvault_db)
        held = self.holdings()
        users, key_docs = self.users(), self.key_docs()
        active = self.active_staff(users, key_docs)
        statuses = {entry['kid']: entry['status'] for entry in (manifest_body or {}).get('keys', ())}
        kids = [kid for kid, status in statuses.items() if status in LIVE_STATUSES]
        kids += sorted(kid for kid in counts if kid not in kids)
        out = []
        for kid in kids:
            people = held.get(kid, {})
            holders = sorted(name for name in people if name in active)
            inactive = sorted(name for name in people
                              if name not in active and name != RECOVERY_ADVOCATE)
            envelopes = counts.get(kid, 0)
            out.append({
                'kid': kid,
                'status': statuses.get(kid, 'unlisted'),
                'envelopes': envelopes,
                'holders': [{'user': name, 'roles': users[name]['roles'],
                             'team': users[name].get('team'), 'via': people[name]['type']}
                            for name in holders],
                'inactive_holders': inactive,
                'recovery': RECOVERY_ADVOCATE in people,
                'recovery_only': envelopes > 0 and not holders,
            })
        return out

    # -- pending shares -----------------------------------------------------

    def pending(self, manifest_body: dict[str, Any] | None, *,
                sharer: str | None = None) -> list[dict[str, Any]]:
        """Return the live versions certified active staff lack.

        Args:
            sharer: When given, only the versions this person holds (what
                they can share), never to themselves; ``None`` lists all.

        Returns:
            ``[{"kek", "to", "apk", "public", "certificate", "holders"}]``:
            the recipient's certified public record and certificate, which
            the sharer's CLI verifies against its pinned signer, and the
            active staff who could share it.
        """
        if manifest_body is None:
            return []
        held = self.holdings()
        users, key_docs = self.users(), self.key_docs()
        active = self.active_staff(users, key_docs)
        live = [entry['kid'] for entry in manifest_body['keys']
                if entry['status'] in LIVE_STATUSES and 'pub' in entry]
        out = []
        for kid in live:
            people = held.get(kid, {})
            if sharer is not None and sharer not in people:
                continue
            holders = sorted(name for name in people if name in active)
            for name in sorted(active):
                if name in people or name == sharer:
                    continue
                key_doc = key_docs[name]
                out.append({'kek': kid, 'to': name, 'apk': key_doc['public']['apk'],
                            'public': key_doc['public'], 'certificate': key_doc['certificate'],
                            'holders': holders})
        return out

    # -- the rule -----------------------------------------------------------

    def versions_left_unheld(self, leaving: Iterable[str]) -> list[str]:
        """Return the versions with envelopes that would have no active holder
        once the people in ``leaving`` stop counting (sorted).

        Only versions that have an active holder now are named: a change
        cannot be blamed for a version that is already recovery-only. The
        active version counts even before its first envelope: tablets seal
        every new record to it, so it always needs a holder.
        """
        leaving = set(leaving)
        active = self.active_staff()
        at_risk = []
        for kid, people in self.holdings().items():
            holders = {name for name in people if name in active}
            if holders and holders <= leaving:
                at_risk.append(kid)
        if not at_risk:
            return []
        counts = census(self._couch, self._keyvault_db)
        active_kid = self._active_kid()
        return sorted(kid for kid in at_risk if counts.get(kid, 0) or kid == active_kid)

    def active_holders(self, kek: str) -> list[str]:
        """Return the active staff who hold ``kek`` (sorted; the recovery key never counts)."""
        active = self.active_staff()
        return sorted(name for name in self.holdings().get(kek, {}) if name in active)

    def holds(self, person: str, kek: str) -> bool:
        """Return True when ``person`` has a grant or share of ``kek``."""
        return self._couch.get_or_none(self._keyvault_db, f'{GRANT_PREFIX}{kek}:{person}') \
            is not None
