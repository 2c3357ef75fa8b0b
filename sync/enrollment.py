"""The device enrollment code: a one-time secret and the org signer's fingerprint.

A tablet learns the org signing key (which every key manifest must be signed
with) from the server it enrolls with. A server operator who rewrites the
``org-signer`` and ``key-manifest`` documents could then make a new tablet
pin the operator's key and seal records to a key the operator opens. So the
signer's fingerprint travels out of band, in the enrollment code the admin's
own CLI prints (as text and as a QR code) from the admin's pinned signer,
never from the server: ``fve1.<secret>.<fingerprint>``, where ``secret`` is
the 43-character one-time secret ``POST /devices`` returned and
``fingerprint`` the 64 lowercase hex digits of SHA-256 over the signer's raw
public key (``keys.fingerprint`` without its spaces). The tablet sends only
the secret to ``POST /devices/enroll`` and refuses a served signer whose
fingerprint differs (docs/SYNC.md).
"""

from __future__ import annotations

import re

__all__ = ['PREFIX', 'compose']

PREFIX = 'fve1'
_CODE = re.compile(r'fve1\.([A-Za-z0-9_-]{43})\.([0-9a-f]{64})')


def compose(secret: str, fingerprint: str) -> str:
    """Return the enrollment code of a one-time secret and a signer fingerprint.

    Args:
        secret: The one-time enrollment secret from ``POST /devices``.
        fingerprint: The signer fingerprint, spaced as ``keys.fingerprint``
            prints it or not.

    Raises:
        ValueError: Either part has the wrong shape.
    """
    code = f'{PREFIX}.{secret}.{fingerprint.replace(" ", "").lower()}'
    if not _CODE.fullmatch(code):
        raise ValueError('not an enrollment secret and a signer fingerprint')
    return code

