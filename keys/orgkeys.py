"""Org encryption key versions (OEKv): HPKE P-256 key pairs.

An :class:`OrgKeyPair` is created on an admin workstation, never on the
server. Its private half leaves that machine only sealed inside a grant
(``keys.grants.seal_grant``); advocates get it back from a grant
(``keys.grants.open_grant``) and hold it in memory in a ``Keyring``.
"""

from __future__ import annotations

from typing import Any

from keys import _primitives
from keys._encoding import b64url_encode, is_identifier
from keys.errors import InvalidKeyMaterial

__all__ = ['SUITE', 'OrgKeyPair', 'OrgPrivateKey']

#: The one HPKE suite of fle/1: KEM 0x0010 DHKEM(P-256, HKDF-SHA256),
#: KDF 0x0001 HKDF-SHA256, AEAD 0x0002 AES-256-GCM.
SUITE = 'hpke:0x0010-0x0001-0x0002'


class OrgKeyPair:
    """One org encryption key version: a ``kid`` and a P-256 key pair.

    There is deliberately no method that exports the private key.
    """

    def __init__(self, kid: str, private_key: Any) -> None:
        if not is_identifier(kid):
            raise InvalidKeyMaterial("'kid' is not a valid key identifier")
        self._kid = kid
        self._private_key = private_key
        self._public_b64 = b64url_encode(_primitives.public_sec1(private_key))

    @classmethod
    def generate(cls, kid: str) -> OrgKeyPair:
        """Generate a new key version from the OS CSPRNG.

        Raises:
            InvalidKeyMaterial: ``kid`` is not a valid identifier.
        """
        return cls(kid, _primitives.generate_p256())

    @classmethod
    def _from_scalar(cls, kid: str, scalar: bytes) -> OrgKeyPair:
        """Build a key from its scalar (grants and known-answer vectors)."""
        return cls(kid, _primitives.private_from_scalar(scalar))

    @property
    def kid(self) -> str:
        """The key version identifier (the ``kek`` of envelopes)."""
        return self._kid

    def public_b64(self) -> str:
        """Return the public key, SEC1 uncompressed (65 bytes), base64url."""
        return self._public_b64

    def _hpke_open(self, enc: bytes, ciphertext: bytes, info: bytes) -> bytes:
        """Open an HPKE ciphertext sealed to this key (package-internal).

        Raises:
            keys._primitives.PrimitiveFailure: Anything fails.
        """
        return _primitives.hpke_open(enc, ciphertext, self._private_key, info)

    def _scalar(self) -> bytes:
        """Return the private scalar, for sealing into a grant only."""
        return _primitives.private_scalar(self._private_key)

    def manifest_entry(self, status: str = 'active',
                       accept_until: str | None = None) -> dict[str, Any]:
        """Return this key's entry for ``build_manifest``."""
        entry = {'kid': self._kid, 'suite': SUITE, 'pub': self._public_b64, 'status': status}
        if accept_until is not None:
            entry['accept_until'] = accept_until
        return entry

    def __repr__(self) -> str:
        return f'OrgKeyPair(kid={self._kid!r})'


#: What ``open_grant`` returns: the same class, named for the reader's side.
OrgPrivateKey = OrgKeyPair
