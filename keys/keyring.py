"""The advocate's in-memory set of unlocked org key versions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from keys.advocates import AdvocateKey
from keys.errors import InvalidKeyMaterial
from keys.grants import open_grant
from keys.orgkeys import OrgKeyPair

__all__ = ['Keyring']


class Keyring:
    """Unlocked org key versions, by ``kid``.

    Opening picks the key version an envelope names (``kek``), so a keyring
    holding several versions opens envelopes from before and after a
    rotation. It lives in memory only: APPSEC: advocates must not persist it
    (or RKs, or plaintext), or revocation and crypto-shredding stop working.

    Args:
        org_keys: At least one key; kids must be unique.

    Raises:
        InvalidKeyMaterial: No keys, or a repeated kid.
    """

    def __init__(self, org_keys: Iterable[OrgKeyPair]) -> None:
        keys: dict[str, OrgKeyPair] = {}
        for org_key in org_keys:
            if not isinstance(org_key, OrgKeyPair):
                raise InvalidKeyMaterial('a keyring holds org keys only')
            if org_key.kid in keys:
                raise InvalidKeyMaterial('a keyring cannot hold the same kid twice')
            keys[org_key.kid] = org_key
        if not keys:
            raise InvalidKeyMaterial('a keyring needs at least one org key')
        self._keys = keys

    @classmethod
    def from_grants(
        cls,
        grants: Sequence[dict[str, Any]],
        advocate_key: AdvocateKey,
        *,
        org: str,
        pinned_public_b64: str,
    ) -> Keyring:
        """Open every grant with the advocate's unlocked APK.

        Raises:
            InvalidCiphertext: Any grant fails (signature, recipient, tampering).
            InvalidKeyMaterial: No grants, or two grants for the same kid.
        """
        return cls(
            open_grant(grant, advocate_key, org=org, pinned_public_b64=pinned_public_b64)
            for grant in grants)

    @property
    def kids(self) -> tuple[str, ...]:
        """The key versions held, in the order they were added."""
        return tuple(self._keys)

    def get(self, kid: str) -> OrgKeyPair | None:
        """Return the key version ``kid``, or ``None``."""
        return self._keys.get(kid)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f'Keyring(kids={list(self._keys)!r})'
