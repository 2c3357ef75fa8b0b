"""Sealed test records for sync tests (shared by functional and integration).

Uses ``tests.factories`` and ``keys.seal_document`` when the encryption and
schema packages provide them; the shapes are fle/1 either way.
"""

from __future__ import annotations

import uuid

import schemas


def plain_contact(owner: str, org: str, **overrides) -> dict:
    """Return an unsealed contact record of ``owner``."""
    try:
        from tests import factories
        doc = factories.make_contact(owner=owner, org=org)
    except ImportError:
        doc = {'_id': f'contact:{uuid.uuid4()}', 'type': 'contact', 'schema': 'contact/1',
               'org': org, 'owner': owner, 'full_name': 'Test Person', 'phone': '555-0100'}
    doc.update(overrides)
    return doc


def sealed_contact(owner: str, org: str, *, manifest_body: dict | None = None,
                   plain: dict | None = None, **overrides) -> tuple[dict, dict]:
    """Return (sealed contact, its ``rk:`` envelope).

    Args:
        manifest_body: The verified manifest to seal to (a published one);
            a throwaway org key of this module when omitted.
        plain: The plaintext record to seal; a fresh contact when omitted.
    """
    import keys
    doc = plain if plain is not None else plain_contact(owner, org, **overrides)
    paths = list(schemas.identifying_paths(doc['type']))
    if manifest_body is not None:
        return keys.seal_document(doc, paths=paths, org=org, manifest_body=manifest_body)
    try:
        return keys.seal_document(doc, paths=paths, org=org, manifest_body=_manifest_body(org))
    except TypeError:
        return keys.seal_document(doc, paths=paths, org=org, manifest_body=None)


_MANIFESTS: dict[str, dict] = {}
_SIGNERS: dict[str, object] = {}


def publish_test_manifest(couch, config_db: str, org: str) -> dict:
    """Pin a signer and publish the manifest ``sealed_contact`` seals to by default.

    A service accepts new envelopes only for key versions its published
    manifest accepts; this stores the two config documents an operator's
    key ceremony leaves (``org-signer`` and ``key-manifest``), so records
    sealed to this module's throwaway org key can be pushed. Returns the
    manifest body.
    """
    import keys
    body = _manifest_body(org)
    signer = _SIGNERS.setdefault(org, keys.SigningKey.generate())
    public = signer.public_b64()
    couch.put(config_db, {'_id': 'org-signer', 'type': 'org-signer', 'public': public,
                          'fingerprint': keys.fingerprint(public)})
    couch.put(config_db, {'_id': 'key-manifest', 'type': 'key-manifest', 'seq': body['seq'],
                          'signed': keys.sign_manifest(body, signer)})
    return body


def _manifest_body(org: str):
    """Return a manifest body with one active org key, built once per org."""
    if org in _MANIFESTS:
        return _MANIFESTS[org]
    body = None
    try:
        import keys
        pair = keys.OrgKeyPair.generate('k1')
        body = keys.build_manifest(org, 1, [pair.manifest_entry('active')])
    except Exception:  # noqa: BLE001 - the keys API is still settling; stub shapes.
        body = None
    _MANIFESTS[org] = body
    return body
