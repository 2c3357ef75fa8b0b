"""The org signing key (held by an admin), fingerprints and ES256 signatures over canonical JSON.

A signed object is ``{"body": {...}, "sig": b64url(r||s), "alg": "ES256",
"signer": fingerprint}``. The signature is ECDSA P-256 with SHA-256 over
``canonical_json(body)``, in WebCrypto's raw 64-byte ``r || s`` format.
Every signed body carries a ``type`` member naming its purpose
(``fle/1/manifest``, ``fle/1/cert``, ``grant``), so a signature made for one
purpose can never verify as another.
"""

from __future__ import annotations

import hashlib
from typing import Any

from keys import _primitives
from keys._encoding import b64url_decode, b64url_encode, canonical_json
from keys.errors import InvalidCiphertext, InvalidKeyMaterial, WeakPassphrase
from keys.passwords import MIN_PASSPHRASE_LENGTH, normalize_secret

__all__ = ['SIGNATURE_ALG', 'SigningKey', 'fingerprint']

#: The JOSE name of the one signature algorithm.
SIGNATURE_ALG = 'ES256'
_SIGNED_KEYS = frozenset({'body', 'sig', 'alg', 'signer'})


class SignatureRefused(Exception):
    """Internal: a signed object failed verification (callers re-raise)."""


def load_public_key(public_b64: Any, *, field: str = 'pub') -> Any:
    """Decode a base64url SEC1 P-256 public key.

    Raises:
        InvalidKeyMaterial: Not base64url, not 65 bytes, or not on P-256.
    """
    try:
        return _primitives.load_public_b64(public_b64)
    except _primitives.PrimitiveFailure:
        raise InvalidKeyMaterial(f"'{field}' is not a P-256 public key") from None


def fingerprint(public_b64: str) -> str:
    """Return the fingerprint of a public key, for reading aloud.

    SHA-256 of the 65 SEC1 bytes, lowercase hex in 16 groups of 4 separated
    by single spaces.

    Raises:
        InvalidKeyMaterial: ``public_b64`` is not a P-256 public key.
    """
    load_public_key(public_b64)
    digest = hashlib.sha256(b64url_decode(public_b64)).hexdigest()
    return ' '.join(digest[index:index + 4] for index in range(0, len(digest), 4))


def check_passphrase(passphrase: str) -> bytes:
    """Return the NFC UTF-8 bytes of a passphrase long enough to use.

    Raises:
        WeakPassphrase: Fewer than ``MIN_PASSPHRASE_LENGTH`` characters.
    """
    if not isinstance(passphrase, str):
        raise TypeError('passphrase must be a str')
    encoded = normalize_secret(passphrase)
    if len(encoded.decode('utf-8')) < MIN_PASSPHRASE_LENGTH:
        raise WeakPassphrase(MIN_PASSPHRASE_LENGTH)
    return encoded


class SigningKey:
    """An ECDSA P-256 key that signs manifests, certificates and grants.

    Create one with :meth:`generate`, or load the admin's own copy with
    :meth:`from_pem`. The private half leaves only as passphrase-encrypted
    PEM for the admin's machine.
    """

    def __init__(self, private_key: Any) -> None:
        self._private_key = private_key
        self._public_b64 = b64url_encode(_primitives.public_sec1(private_key))

    @classmethod
    def generate(cls) -> SigningKey:
        """Generate a new signing key from the OS CSPRNG."""
        return cls(_primitives.generate_p256())

    @classmethod
    def _from_scalar(cls, scalar: bytes) -> SigningKey:
        """Build a key from a fixed scalar (known-answer vectors only)."""
        return cls(_primitives.private_from_scalar(scalar))

    def public_b64(self) -> str:
        """Return the public key, SEC1 uncompressed, base64url."""
        return self._public_b64

    def fingerprint(self) -> str:
        """Return the public key's fingerprint (see :func:`fingerprint`)."""
        return fingerprint(self._public_b64)

    def to_pem(self, passphrase: str) -> bytes:
        """Export the private key as passphrase-encrypted PKCS #8 PEM.

        Raises:
            WeakPassphrase: The passphrase is too short.
        """
        return _primitives.private_to_pem(self._private_key, check_passphrase(passphrase))

    @classmethod
    def from_pem(cls, data: bytes, passphrase: str) -> SigningKey:
        """Load a key exported by :meth:`to_pem`.

        Raises:
            InvalidCiphertext: Wrong passphrase, malformed PEM, or not P-256.
        """
        if not isinstance(data, (bytes, bytearray)) or not isinstance(passphrase, str):
            raise InvalidCiphertext from None
        try:
            key = _primitives.private_from_pem(bytes(data), normalize_secret(passphrase))
        except _primitives.PrimitiveFailure:
            raise InvalidCiphertext from None
        return cls(key)

    def sign(self, body: dict[str, Any]) -> str:
        """Sign ``canonical_json(body)``; returns base64url ``r || s``.

        Raises:
            InvalidKeyMaterial: ``body`` cannot be written as canonical JSON.
        """
        try:
            message = canonical_json(body)
        except ValueError:
            raise InvalidKeyMaterial(
                'the signed body holds a value canonical JSON does not allow') from None
        return b64url_encode(_primitives.ecdsa_sign(self._private_key, message))

    def __repr__(self) -> str:
        return f'SigningKey(fingerprint={self.fingerprint()!r})'


def sign_body(body: dict[str, Any], signing_key: SigningKey) -> dict[str, Any]:
    """Wrap ``body`` into a signed object."""
    return {
        'body': body,
        'sig': signing_key.sign(body),
        'alg': SIGNATURE_ALG,
        'signer': signing_key.fingerprint(),
    }


def verify_signature(body: Any, signature_b64: Any, public_key: Any) -> None:
    """Verify ``signature_b64`` over ``canonical_json(body)``.

    Raises:
        SignatureRefused: Anything at all is wrong.
    """
    try:
        signature = b64url_decode(signature_b64, length=_primitives.SIGNATURE_LENGTH)
        message = canonical_json(body)
        _primitives.ecdsa_verify(public_key, signature, message)
    except (ValueError, _primitives.PrimitiveFailure):
        raise SignatureRefused from None


def verify_signed(signed: Any, pinned_public_b64: str) -> dict[str, Any]:
    """Check a signed object's shape and signature; return its body.

    Raises:
        InvalidKeyMaterial: ``pinned_public_b64`` itself is malformed.
        SignatureRefused: The object is malformed or the signature is bad.
    """
    public_key = load_public_key(pinned_public_b64, field='pinned public key')
    if not isinstance(signed, dict) or set(signed) != _SIGNED_KEYS:
        raise SignatureRefused
    if signed['alg'] != SIGNATURE_ALG or not isinstance(signed['body'], dict):
        raise SignatureRefused
    if signed['signer'] != fingerprint(pinned_public_b64):
        raise SignatureRefused
    verify_signature(signed['body'], signed['sig'], public_key)
    return signed['body']
