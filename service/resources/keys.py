"""Key distribution: the org signer, the signed manifest, advocate keys,
certificates and grants.

The server only stores and hands out public or sealed material, and checks
signatures so that a tampered upload is refused early. It never holds an
unsealed org private key; advocates' clients verify every signature again
against the signer they pinned, so a malicious server gains nothing by
skipping these checks.
"""

from __future__ import annotations

from typing import Any

import keys
from keys.advocates import RECOVERY_ADVOCATE, check_public_record
from keys.grants import check_grant_signature
from service.errors import ApiError
from service.openapi_bodies import (AdvocateKeyBody, CertificateBody, GrantsBody, ManifestBody,
                                    SignerBody, load_body)
from service.resources import ADMIN, ALL_STAFF, CASE_STAFF
from service.resources.custody import custody_of, refuse_unheld_activation
from service.resources.lifecycle import manifest_events
from sync.errors import DocumentConflict

SIGNER_ID = 'org-signer'
MANIFEST_ID = 'key-manifest'
#: Key statuses in the only order a version may move through them.
_STATUS_RANK = {'active': 0, 'decrypt-only': 1, 'retired': 2}
#: Grant members that carry the sealed key; a stored grant never changes them.
_SEALED_GRANT = ('kek', 'advocate', 'apk', 'suite', 'enc', 'ct')


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

    def signer(self) -> dict[str, Any] | None:
        """Return the pinned org signer document, if any."""
        return self._config_watch.get(SIGNER_ID)

    def signer_public(self) -> str:
        """Return the pinned signer public key, or raise 409 when there is none."""
        signer = self.signer()
        if signer is None:
            raise ApiError(409, 'no_signer', 'No org signing key is pinned yet.')
        return signer['public']

    def manifest(self) -> dict[str, Any] | None:
        """Return the signed manifest document, if published."""
        return self._config_watch.get(MANIFEST_ID)

    def manifest_body(self) -> dict[str, Any] | None:
        """Return the verified body of the current manifest, if published."""
        current = self.manifest()
        if current is None:
            return None
        return keys.verify_manifest(current['signed'], self.signer_public())

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
            ApiError: 409 ``grant_exists`` when a live grant of the same
                version and person holds another sealed key (a key id is
                never reused, and a stray grant would make that person's
                keyring fail to load); remove it first (``keys remove-grant``).
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
                    raise ApiError(409, 'grant_exists',
                                   f"A grant of {doc['kek']} to {doc['advocate']} already "
                                   'exists with another key: a key id is never reused, so '
                                   'choose a new one, or remove the stray grant first.')
                continue
            if row is not None:
                doc['_rev'] = row['value']['rev']  # re-granting after a removal
            docs.append(doc)
        return self._couch.bulk_docs(self._keyvault_db, docs) if docs else []


class SignerResource:
    """``GET /keys/signer`` shows the pinned org signing key; ``PUT`` pins it once."""

    auth = {'GET': 'public', 'PUT': ADMIN}

    def __init__(self, store: KeyStore, audit) -> None:
        self._store = store
        self._audit = audit

    def on_get(self, req, resp):
        signer = self._store.signer()
        if signer is None:
            raise ApiError(404, 'not_found', 'No org signing key is pinned yet.')
        resp.media = {'public': signer['public'], 'fingerprint': signer['fingerprint'],
                      'org': self._store.org}

    def on_put(self, req, resp):
        body = load_body(req, SignerBody)
        fingerprint = keys.fingerprint(body['public'])
        try:
            self._store.put_config({'_id': SIGNER_ID, 'type': 'org-signer',
                                    'public': body['public'], 'fingerprint': fingerprint})
        except DocumentConflict:
            # APPSEC: replacing the signer would let whoever holds the new key
            # issue manifests and grants; it is a deliberate operator action,
            # not an API call.
            raise ApiError(409, 'signer_pinned', 'An org signing key is already pinned.') from None
        self._audit.record('signer_pinned', actor=f'user:{req.context.principal.id}',
                           details={'fingerprint': fingerprint})
        resp.status = 201
        resp.media = {'public': body['public'], 'fingerprint': fingerprint}


class ManifestResource:
    """``GET /keys/manifest`` (public, for tablets); ``PUT`` publishes a signed one.

    A new manifest that makes another version active is refused (409
    ``recovery_only``) while no active staff holds that version, unless
    ``?accept_recovery_only=true`` (audited).
    """

    auth = {'GET': 'public', 'PUT': ADMIN}

    def __init__(self, store: KeyStore, audit, custody) -> None:
        self._store = store
        self._audit = audit
        self._custody = custody

    def on_get(self, req, resp):
        current = self._store.manifest()
        if current is None:
            raise ApiError(404, 'not_found', 'No key manifest is published yet.')
        resp.media = {'signed': current['signed'], 'signer': self._store.signer_public()}

    def on_put(self, req, resp):
        body = load_body(req, ManifestBody)
        signer = self._store.signer_public()
        current = self._store.manifest()
        min_seq = None
        if current is not None:
            min_seq = keys.verify_manifest(current['signed'], signer)['seq'] + 1
        manifest = keys.verify_manifest(body['signed'], signer, min_seq=min_seq)
        previous = keys.verify_manifest(current['signed'], signer) if current else None
        problem = manifest_succession_problem(previous, manifest, self._store.org)
        if problem is not None:
            raise ApiError(409 if problem[0] != 'org_mismatch' else 422, *problem)
        active = keys.active_key(manifest)['kid']
        if previous is not None and active != keys.active_key(previous)['kid']:
            # APPSEC: a rotation is a custody change like a disable: the new
            # version must be openable by current staff, not only by recovery.
            refuse_unheld_activation(self._custody, self._audit, req, active)
        doc = {'_id': MANIFEST_ID, 'type': 'key-manifest', 'seq': manifest['seq'],
               'signed': body['signed']}
        if current is not None:
            doc['_rev'] = current['_rev']
        self._store.put_config(doc)
        self._audit.record('manifest_published', actor=f'user:{req.context.principal.id}',
                           details={'seq': manifest['seq'],
                                    'keys': [(k['kid'], k['status']) for k in manifest['keys']]})
        for kind, details in manifest_events(previous, manifest):
            self._audit.record(kind, actor=f'user:{req.context.principal.id}', details=details)
        resp.media = {'seq': manifest['seq']}


class AdvocateKeysResource:
    """``POST /advocates/keys`` enrolls the caller's key; ``GET`` lists them (admin)."""

    auth = {'GET': ADMIN, 'POST': CASE_STAFF}

    def __init__(self, store: KeyStore, audit) -> None:
        self._store = store
        self._audit = audit

    def on_get(self, req, resp):
        resp.media = {'keys': [
            {'advocate': doc['advocate'], 'apk': doc['public']['apk'],
             'fingerprint': doc['public']['fingerprint'], 'status': doc['status']}
            for doc in self._store.advocate_keys()]}

    def on_post(self, req, resp):
        body = load_body(req, AdvocateKeyBody)
        me = req.context.principal.id
        public, wrapped = body['public'], body['wrapped']
        check_public_record(public)
        checked = public
        if checked['advocate'] != me or wrapped.get('advocate') != me \
                or wrapped.get('apk') != checked['apk'] or wrapped.get('pub') != checked['pub']:
            raise ApiError(422, 'key_mismatch',
                           'The key must be yours, and the wrapped key must match the public key.')
        existing = self._store.advocate_key(me)
        doc = {'_id': f'apk:{me}', 'type': 'advocate-key', 'advocate': me,
               'public': checked, 'wrapped': wrapped, 'status': 'pending', 'certificate': None}
        if existing is not None:
            doc['_rev'] = existing['_rev']
        self._store.put_directory(doc)
        self._audit.record('advocate_key_enrolled', actor=f'user:{me}',
                           details={'apk': checked['apk'], 'fingerprint': checked['fingerprint']})
        resp.status = 201
        resp.media = {'advocate': me, 'apk': checked['apk'],
                      'fingerprint': checked['fingerprint'], 'status': 'pending'}


class AdvocateKeyResource:
    """``GET /advocates/keys/{advocate}`` shows one enrolled key (admin, for certifying)."""

    auth = {'GET': ADMIN}

    def __init__(self, store: KeyStore) -> None:
        self._store = store

    def on_get(self, req, resp, advocate):
        doc = self._store.advocate_key(advocate)
        if doc is None:
            raise ApiError(404, 'not_found', 'No key is enrolled for that advocate.')
        resp.media = {'public': doc['public'], 'status': doc['status'],
                      'certificate': doc['certificate']}


class CertificateResource:
    """``PUT /advocates/keys/{advocate}/certificate``: admin certifies a key.

    The answer and the audit event name the live key versions the person
    now needs (``needs``): a holder shares each of them (``GET /keys/pending``).
    """

    auth = {'PUT': ADMIN}

    def __init__(self, store: KeyStore, audit, custody=None) -> None:
        self._store = store
        self._audit = audit
        self._custody = custody

    def on_put(self, req, resp, advocate):
        body = load_body(req, CertificateBody)
        doc = self._store.advocate_key(advocate)
        if doc is None:
            raise ApiError(404, 'not_found', 'No key is enrolled for that advocate.')
        certified = keys.verify_certificate(body['certificate'], self._store.signer_public())
        if certified['advocate'] != advocate or certified['apk'] != doc['public']['apk'] \
                or certified['pub'] != doc['public']['pub']:
            raise ApiError(422, 'key_mismatch', 'The certificate is for another key.')
        doc['certificate'] = body['certificate']
        doc['status'] = 'certified'
        self._store.put_directory(doc)
        needs = []
        if self._custody is not None and self._store.manifest() is not None:
            needs = sorted({item['kek'] for item in self._custody.pending(
                self._store.manifest_body()) if item['to'] == advocate})
        self._audit.record('advocate_key_certified', actor=f'user:{req.context.principal.id}',
                           subject=f'user:{advocate}',
                           details={'apk': doc['public']['apk'], 'needs': needs})
        resp.media = {'advocate': advocate, 'status': 'certified', 'needs': needs}


class CertifiedKeysResource:
    """``GET /advocates/certified``: certified public keys, for the admin's grant step."""

    auth = {'GET': ADMIN}

    def __init__(self, store: KeyStore) -> None:
        self._store = store

    def on_get(self, req, resp):
        resp.media = {'keys': [
            {'public': doc['public'], 'certificate': doc['certificate']}
            for doc in self._store.advocate_keys() if doc['status'] == 'certified']}


class MyKeyResource:
    """``GET /advocates/me``: the caller's wrapped key and grants, to unlock locally."""

    auth = {'GET': CASE_STAFF}

    def __init__(self, store: KeyStore) -> None:
        self._store = store

    def on_get(self, req, resp):
        me = req.context.principal.id
        doc = self._store.advocate_key(me)
        if doc is None:
            raise ApiError(404, 'not_found', 'You have not enrolled a key.')
        resp.media = {'public': doc['public'], 'wrapped': doc['wrapped'], 'status': doc['status'],
                      'grants': self._store.grants_for(me)}


class GrantsResource:
    """``POST /keys/grants``: store grants the admin sealed and signed on their machine.

    Once a manifest exists, grants go only to the recovery key and to people
    who hold the active version (a rotation seals to existing holders); a
    newly certified person gets versions by a holder's share.
    """

    auth = {'POST': ADMIN}

    def __init__(self, store: KeyStore, audit) -> None:
        self._store = store
        self._audit = audit

    def on_post(self, req, resp):
        grants = load_body(req, GrantsBody)['grants']
        signer = self._store.signer_public()
        for grant in grants:
            # APPSEC: only the org signer's grants are stored. Advocates verify
            # the signature again when they open one, but a planted grant
            # stored here would still make their keyring fail to load.
            check_grant_signature(grant, signer)
        self._only_to_holders(grants)
        results = self._store.put_grants(grants)
        failed = [r for r in results if r.get('error')]
        if failed:
            raise ApiError(409, 'conflict', 'Some grants changed concurrently; retry.')
        for grant in grants:
            self._audit.record('grant_stored', actor=f'user:{req.context.principal.id}',
                               subject=f'user:{grant["advocate"]}', details={'kek': grant['kek']})
        resp.status = 201
        resp.media = {'stored': len(grants)}

    def _only_to_holders(self, grants: list[dict[str, Any]]) -> None:
        manifest = self._store.manifest_body()
        if manifest is None:
            return  # the first key: every certified person gets it
        active = keys.active_key(manifest)['kid']
        held = {doc['advocate'] for doc in self._store.holders_of(active)}
        outsiders = sorted({grant['advocate'] for grant in grants
                            if grant['advocate'] != RECOVERY_ADVOCATE
                            and grant['advocate'] not in held})
        if outsiders:
            # APPSEC: a grant made by the admin alone would give a new person
            # a key without a second person; that is a holder's share.
            raise ApiError(409, 'not_a_holder',
                           f'Grants go only to holders of {active} and the recovery key; a '
                           'holder shares versions with anyone else (`fieldvault keys share`).',
                           fields={'advocates': outsiders})


def key_routes(services) -> list[tuple[str, Any]]:
    """Return the key-distribution routes."""
    store = KeyStore(services)
    audit = services.audit
    return [
        ('/keys/signer', SignerResource(store, audit)),
        ('/keys/manifest', ManifestResource(store, audit, custody_of(services))),
        ('/keys/grants', GrantsResource(store, audit)),
        ('/advocates/keys', AdvocateKeysResource(store, audit)),
        ('/advocates/keys/{advocate}', AdvocateKeyResource(store)),
        ('/advocates/keys/{advocate}/certificate',
         CertificateResource(store, audit, custody=custody_of(services))),
        ('/advocates/certified', CertifiedKeysResource(store)),
        ('/advocates/me', MyKeyResource(store)),
    ]


__all__ = ['KeyStore', 'key_routes', 'ALL_STAFF']
