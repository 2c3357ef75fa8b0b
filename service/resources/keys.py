"""Key distribution: the org signer, the signed manifest, advocate keys,
certificates and grants (the documents themselves: ``service.keystore``).

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
from service.keystore import (MANIFEST_ID, SIGNER_ID, KeyStore, manifest_events,
                              manifest_succession_problem)
from service.openapi_bodies import (AdvocateKeyBody, CertificateBody, GrantsBody, ManifestBody,
                                    SignerBody, load_body)
from service.resources import ADMIN, CASE_STAFF
from service.resources.custody import refuse_unheld_activation
from sync.errors import DocumentConflict

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


def key_routes(services, store: KeyStore, custody) -> list[tuple[str, Any]]:
    """Return the key-distribution routes."""
    audit = services.audit
    return [
        ('/keys/signer', SignerResource(store, audit)),
        ('/keys/manifest', ManifestResource(store, audit, custody)),
        ('/keys/grants', GrantsResource(store, audit)),
        ('/advocates/keys', AdvocateKeysResource(store, audit)),
        ('/advocates/keys/{advocate}', AdvocateKeyResource(store)),
        ('/advocates/keys/{advocate}/certificate',
         CertificateResource(store, audit, custody=custody)),
        ('/advocates/certified', CertifiedKeysResource(store)),
        ('/advocates/me', MyKeyResource(store)),
    ]


__all__ = ['key_routes']
