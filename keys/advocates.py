"""Advocate personal keys (APK): generation, passphrase wrapping, certificates.

An APK is a P-256 HPKE key pair. Its private half lives in the ``directory``
database only as a passphrase-wrapped blob::

    {"v": 1, "kdf": "argon2id", "m": 19456, "t": 2, "p": 1,
     "salt": "<b64url 16>", "n": "<b64url 12>", "ct": "<b64url 48>",
     "advocate": "adv-17", "apk": "apk-...", "pub": "<b64url SEC1>"}

``KEK = Argon2id(NFC(passphrase), salt, m, t, p, 32 bytes)``;
``ct = AES-256-GCM(KEK, n, private scalar, AAD = PAE("fle/1/apk", advocate, apk))``.
It is unwrapped only on the advocate's own machine.

Before any grant is made to an APK, an admin compares its fingerprint with
the one the advocate's machine shows (in person or by phone) and signs a
certificate. A *recovery key* is simply an APK whose advocate id is
``"recovery"``, generated and kept offline by the org's trustees; every key
version gets a grant to it (break-glass copy).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import Any

from keys import _primitives
from keys._encoding import b64url_decode, b64url_encode, is_identifier, pae
from keys.errors import InvalidCiphertext, InvalidKeyMaterial
from keys.orgkeys import SUITE
from keys.passwords import DEFAULT_ARGON2, Argon2Params, normalize_secret
from keys.signing import (
    SignatureRefused,
    SigningKey,
    check_passphrase,
    fingerprint,
    load_public_key,
    sign_body,
    verify_signed,
)

__all__ = [
    'RECOVERY_ADVOCATE',
    'AdvocateKey',
    'certify_advocate_key',
    'verify_certificate',
]

APK_TAG = 'fle/1/apk'
CERT_TYPE = 'fle/1/cert'
#: The advocate id of the org's offline break-glass recovery key.
RECOVERY_ADVOCATE = 'recovery'

_BLOB_KEYS = frozenset(
    {'v', 'kdf', 'm', 't', 'p', 'salt', 'n', 'ct', 'advocate', 'apk', 'pub'})
_RECORD_KEYS = frozenset({'advocate', 'apk', 'suite', 'pub', 'fingerprint'})
_CERT_KEYS = _RECORD_KEYS | {'type', 'certified_by'}
#: Bounds on Argon2id parameters read from a stored blob.
# APPSEC: the blob comes from the server; an unbounded ``m`` would let it
# exhaust the advocate machine's memory.
_MAX_MEMORY_KIB = 1024 * 1024
_MAX_ITERATIONS = 32
_MAX_LANES = 16
_SALT_LENGTH = 16
_WRAPPED_LENGTH = _primitives.SCALAR_LENGTH + _primitives.TAG_LENGTH


def _apk_aad(advocate: str, apk: str) -> bytes:
    return pae(APK_TAG, advocate, apk)


class AdvocateKey:
    """An advocate's personal HPKE key pair, unlocked in memory.

    Create one with :meth:`generate` or :meth:`unwrap`.
    """

    def __init__(self, advocate_id: str, key_id: str, private_key: Any) -> None:
        if not is_identifier(advocate_id):
            raise InvalidKeyMaterial("'advocate_id' is not a valid identifier")
        if not is_identifier(key_id):
            raise InvalidKeyMaterial("'key_id' is not a valid identifier")
        self._advocate_id = advocate_id
        self._key_id = key_id
        self._private_key = private_key
        self._public_b64 = b64url_encode(_primitives.public_sec1(private_key))

    @classmethod
    def generate(cls, advocate_id: str, key_id: str | None = None) -> AdvocateKey:
        """Generate a new APK from the OS CSPRNG.

        Args:
            advocate_id: The advocate's identifier (``"recovery"`` for the
                break-glass key).
            key_id: The APK identifier; ``apk-<16 random hex>`` by default.
        """
        key_id = key_id if key_id is not None else f'apk-{secrets.token_hex(8)}'
        return cls(advocate_id, key_id, _primitives.generate_p256())

    @classmethod
    def _from_scalar(cls, advocate_id: str, key_id: str, scalar: bytes) -> AdvocateKey:
        """Build a key from a fixed scalar (known-answer vectors only)."""
        return cls(advocate_id, key_id, _primitives.private_from_scalar(scalar))

    @property
    def advocate_id(self) -> str:
        return self._advocate_id

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_b64(self) -> str:
        """Return the public key, SEC1 uncompressed, base64url."""
        return self._public_b64

    def fingerprint(self) -> str:
        """Return the fingerprint the admin checks before certifying."""
        return fingerprint(self._public_b64)

    def public_record(self) -> dict[str, str]:
        """Return what the ``directory`` stores and the admin certifies."""
        return {
            'advocate': self._advocate_id,
            'apk': self._key_id,
            'suite': SUITE,
            'pub': self._public_b64,
            'fingerprint': self.fingerprint(),
        }

    def wrap(self, passphrase: str, *, params: Argon2Params = DEFAULT_ARGON2) -> dict[str, Any]:
        """Wrap the private key under a passphrase for the ``directory``.

        Args:
            passphrase: At least ``MIN_PASSPHRASE_LENGTH`` characters.
            params: Argon2id cost; the default is OWASP's floor (19 MiB,
                t = 2, p = 1). The parameters are stored in the blob.

        Raises:
            WeakPassphrase: The passphrase is too short.
        """
        return self._wrap_with(passphrase, params=params, rng=os.urandom)

    def _wrap_with(
        self, passphrase: str, *, params: Argon2Params, rng: Callable[[int], bytes],
    ) -> dict[str, Any]:
        """Deterministic twin of :meth:`wrap` (vectors only)."""
        secret = check_passphrase(passphrase)
        salt = rng(_SALT_LENGTH)
        nonce = rng(_primitives.NONCE_LENGTH)
        kek = _primitives.argon2id(
            secret, salt=salt, memory_kib=params.memory_kib, iterations=params.iterations,
            lanes=params.lanes)
        ciphertext = _primitives.aes_gcm_seal(
            kek, nonce, _primitives.private_scalar(self._private_key),
            _apk_aad(self._advocate_id, self._key_id))
        return {
            'v': 1,
            'kdf': 'argon2id',
            'm': params.memory_kib,
            't': params.iterations,
            'p': params.lanes,
            'salt': b64url_encode(salt),
            'n': b64url_encode(nonce),
            'ct': b64url_encode(ciphertext),
            'advocate': self._advocate_id,
            'apk': self._key_id,
            'pub': self._public_b64,
        }

    @classmethod
    def unwrap(cls, blob: dict[str, Any], passphrase: str) -> AdvocateKey:
        """Unwrap a blob made by :meth:`wrap`.

        Raises:
            InvalidCiphertext: Wrong passphrase, tampering, out-of-bounds
                parameters, or any malformed member.
        """
        if not isinstance(blob, dict) or set(blob) != _BLOB_KEYS or not isinstance(passphrase, str):
            raise InvalidCiphertext from None
        if blob['v'] != 1 or isinstance(blob['v'], bool) or blob['kdf'] != 'argon2id':
            raise InvalidCiphertext from None
        memory, iterations, lanes = blob['m'], blob['t'], blob['p']
        if not all(isinstance(value, int) and not isinstance(value, bool)
                   for value in (memory, iterations, lanes)):
            raise InvalidCiphertext from None
        if not (1 <= lanes <= _MAX_LANES and 8 * lanes <= memory <= _MAX_MEMORY_KIB
                and 1 <= iterations <= _MAX_ITERATIONS):
            raise InvalidCiphertext from None
        if not is_identifier(blob['advocate']) or not is_identifier(blob['apk']):
            raise InvalidCiphertext from None
        try:
            salt = b64url_decode(blob['salt'], length=_SALT_LENGTH)
            nonce = b64url_decode(blob['n'], length=_primitives.NONCE_LENGTH)
            ciphertext = b64url_decode(blob['ct'], length=_WRAPPED_LENGTH)
            kek = _primitives.argon2id(
                normalize_secret(passphrase), salt=salt, memory_kib=memory,
                iterations=iterations, lanes=lanes)
            scalar = _primitives.aes_gcm_open(
                kek, nonce, ciphertext, _apk_aad(blob['advocate'], blob['apk']))
            key = cls._from_scalar(blob['advocate'], blob['apk'], scalar)
        except (ValueError, _primitives.PrimitiveFailure, InvalidKeyMaterial):
            raise InvalidCiphertext from None
        # The stored public key must be the one the scalar gives, or the
        # directory would show (and get certified) a key nobody holds.
        if key.public_b64() != blob['pub']:
            raise InvalidCiphertext from None
        return key

    def _hpke_open(self, enc: bytes, ciphertext: bytes, info: bytes) -> bytes:
        """Open an HPKE ciphertext sealed to this APK (package-internal)."""
        return _primitives.hpke_open(enc, ciphertext, self._private_key, info)

    def __repr__(self) -> str:
        return f'AdvocateKey(advocate_id={self._advocate_id!r}, key_id={self._key_id!r})'


def check_public_record(record: Any) -> None:
    """Check an APK public record; its fingerprint must match its key.

    Raises:
        InvalidKeyMaterial: The reason names the member.
    """
    if not isinstance(record, dict) or set(record) != _RECORD_KEYS:
        raise InvalidKeyMaterial(
            'advocate key record must have advocate, apk, suite, pub, fingerprint')
    for name in ('advocate', 'apk'):
        if not is_identifier(record[name]):
            raise InvalidKeyMaterial(f"advocate key record '{name}' is not a valid identifier")
    if record['suite'] != SUITE:
        raise InvalidKeyMaterial("advocate key record 'suite' is not an allowed suite")
    load_public_key(record['pub'])
    if record['fingerprint'] != fingerprint(record['pub']):
        raise InvalidKeyMaterial("advocate key record 'fingerprint' does not match 'pub'")


def certify_advocate_key(
    public_record: dict[str, Any], signing_key: SigningKey, *, certified_by: str,
) -> dict[str, Any]:
    """Sign an advocate's APK after the admin checked its fingerprint.

    Call this only after comparing ``public_record["fingerprint"]`` with the
    fingerprint shown on the advocate's own machine, over a channel the
    server does not control.

    Returns:
        ``{"body": {"type": "fle/1/cert", "advocate", "apk", "suite", "pub",
        "fingerprint", "certified_by"}, "sig", "alg": "ES256", "signer"}``.

    Raises:
        InvalidKeyMaterial: The record or ``certified_by`` is malformed.
    """
    check_public_record(public_record)
    if not is_identifier(certified_by):
        raise InvalidKeyMaterial("'certified_by' is not a valid identifier")
    body = {'type': CERT_TYPE, **public_record, 'certified_by': certified_by}
    return sign_body(body, signing_key)


def verify_certificate(cert: dict[str, Any], pinned_public_b64: str) -> dict[str, Any]:
    """Verify an advocate certificate against the pinned org signing key.

    Returns:
        The certificate body (``advocate``, ``apk``, ``pub``...).

    Raises:
        InvalidKeyMaterial: Bad signature or malformed certificate (one
            message), or a malformed ``pinned_public_b64``.
    """
    refused = 'the advocate certificate is not valid'
    try:
        body = verify_signed(cert, pinned_public_b64)
    except SignatureRefused:
        load_public_key(pinned_public_b64, field='pinned public key')
        raise InvalidKeyMaterial(refused) from None
    well_formed = set(body) == _CERT_KEYS and body['type'] == CERT_TYPE
    if not well_formed or not is_identifier(body['certified_by']):
        raise InvalidKeyMaterial(refused)
    try:
        check_public_record({name: body[name] for name in _RECORD_KEYS})
    except InvalidKeyMaterial:
        raise InvalidKeyMaterial(refused) from None
    return dict(body)
