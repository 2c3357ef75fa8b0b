"""Field-level encryption (fle/1), org key versions, manifests, advocate keys.

Recipes only: nothing here takes a nonce, a salt or an ephemeral key. The
primitives sit in the private ``keys._primitives``, the one module that
imports ``cryptography.hazmat``. The format is specified byte by byte in
``docs/ENCRYPTION.md``.

Where each step runs:

* admin workstation: ``OrgKeyPair.generate``, ``SigningKey``,
  ``build_manifest``/``sign_manifest``, ``certify_advocate_key``, ``seal_grant``;
* tablet: ``verify_manifest``, ``seal_document``, ``reseal_fields``;
* server: ``validate_envelope``, ``validate_grant``, passwords; it never
  opens anything (sealed values and the ``fle`` header are checked for shape
  by the crypto-free ``fle`` package, through the record schemas);
* advocate machine: ``AdvocateKey.unwrap``, ``Keyring.from_grants``,
  ``open_document``, ``open_envelope``, ``rewrap_envelope`` (custodian),
  ``open_holdings``, ``seal_share`` (a holder passing a version on).
"""

from keys.advocates import (
    RECOVERY_ADVOCATE,
    AdvocateKey,
    certify_advocate_key,
    verify_certificate,
)
from keys.envelopes import open_envelope, rewrap_envelope, validate_envelope
from keys.errors import (
    InvalidCiphertext,
    InvalidKeyMaterial,
    InvalidManifest,
    KeysError,
    WeakPassphrase,
)
from keys.fields import (
    open_document,
    reseal_fields,
    reseal_fields_at_time,
    seal_document,
    seal_document_at_time,
)
from keys.grants import open_grant, seal_grant, validate_grant
from keys.keyring import Keyring
from keys.manifest import active_key, build_manifest, sign_manifest, verify_manifest
from keys.shares import open_holdings, open_share, seal_share, validate_share
from keys.orgkeys import SUITE, OrgKeyPair, OrgPrivateKey
from keys.passwords import (
    DEFAULT_ARGON2,
    MIN_PASSPHRASE_LENGTH,
    Argon2Params,
    hash_password,
    verify_password,
)
from keys.signing import SigningKey, fingerprint

__all__ = [
    'DEFAULT_ARGON2',
    'MIN_PASSPHRASE_LENGTH',
    'RECOVERY_ADVOCATE',
    'SUITE',
    'AdvocateKey',
    'Argon2Params',
    'InvalidCiphertext',
    'InvalidKeyMaterial',
    'InvalidManifest',
    'Keyring',
    'KeysError',
    'OrgKeyPair',
    'OrgPrivateKey',
    'SigningKey',
    'WeakPassphrase',
    'active_key',
    'build_manifest',
    'certify_advocate_key',
    'fingerprint',
    'hash_password',
    'open_document',
    'open_envelope',
    'open_grant',
    'open_holdings',
    'open_share',
    'reseal_fields',
    'reseal_fields_at_time',
    'rewrap_envelope',
    'seal_document',
    'seal_document_at_time',
    'seal_grant',
    'seal_share',
    'sign_manifest',
    'validate_envelope',
    'validate_grant',
    'validate_share',
    'verify_certificate',
    'verify_manifest',
    'verify_password',
]
