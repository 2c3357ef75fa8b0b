"""Exceptions raised by ``keys``.

The tree::

    KeysError
    ├── InvalidCiphertext    anything sealed could not be opened (one message)
    ├── InvalidManifest      a signed key manifest was refused (one message)
    ├── InvalidKeyMaterial   malformed input to a sealing, signing or
    │                        validation API; the reason names a field, never
    │                        a value
    └── WeakPassphrase       a passphrase shorter than the minimum

APPSEC: ``InvalidCiphertext`` and ``InvalidManifest`` carry no detail at all,
like pyca's ``InvalidToken``. Wrong key, tampering, a moved value, a wrong
``rkid``, a failed commitment, an unknown version or suite, truncation, bad
base64 and off-curve points all look the same to the caller and to the logs,
so none of them can serve as an oracle.
"""

from __future__ import annotations

__all__ = [
    'InvalidCiphertext',
    'InvalidKeyMaterial',
    'InvalidManifest',
    'KeysError',
    'WeakPassphrase',
]


class KeysError(Exception):
    """Base class of every error raised by ``keys``."""


class InvalidCiphertext(KeysError):
    """Sealed data (field, envelope, grant, wrapped key) could not be opened."""

    MESSAGE = 'The sealed data could not be opened.'

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class InvalidManifest(KeysError):
    """A signed key manifest is malformed, badly signed or rolled back."""

    MESSAGE = 'The key manifest could not be verified.'

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class InvalidKeyMaterial(KeysError):
    """Input to a non-opening API is malformed.

    Args:
        reason: One sentence naming the field or rule that failed. It is
            shown to API clients, so it must never quote a submitted value.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WeakPassphrase(KeysError):
    """A passphrase is shorter than the minimum length.

    Args:
        minimum: The minimum number of characters required.
    """

    def __init__(self, minimum: int) -> None:
        super().__init__(f'The passphrase must have at least {minimum} characters.')
        self.minimum = minimum
