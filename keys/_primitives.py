"""Hazardous materials: the cryptographic primitives behind ``keys``.

.. danger::

   This is a "Hazardous Materials" module. You should **ONLY** use it if
   you are 100% sure that you know what you are doing, because it is full
   of land mines, dragons and dinosaurs with laser guns. Use the recipe-level
   API in ``keys`` (``seal_document``, ``open_document``, ``seal_grant``,
   ``verify_manifest``...) instead.

This is the only module of fieldvault that imports ``cryptography.hazmat``
(``tests/unit/test_keys_boundary.py`` enforces it). It makes no policy
decisions: it takes and returns raw bytes and opaque pyca key objects, and
turns every pyca failure into :class:`PrimitiveFailure`, which callers in
``keys`` map to their single opaque public exception. Several functions
take a nonce or a salt; that is exactly why nothing outside ``keys`` may call
them.
"""

from __future__ import annotations

import dataclasses
import functools
import os

from cryptography.exceptions import InvalidKey, InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, hmac, hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from keys._encoding import b64url_decode

#: Length of a P-256 private scalar.
SCALAR_LENGTH = 32
#: Length of an uncompressed SEC1 P-256 point (``0x04 || X || Y``).
SEC1_LENGTH = 65
#: Length of a raw ECDSA P-256 signature (``r || s``).
SIGNATURE_LENGTH = 64
#: AES-GCM nonce and tag lengths.
NONCE_LENGTH = 12
TAG_LENGTH = 16
#: Order of the P-256 group.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

#: RFC 9180 identifiers of the one suite fle/1 uses.
KEM_ID = 0x0010  # DHKEM(P-256, HKDF-SHA256)
KDF_ID = 0x0001  # HKDF-SHA256
AEAD_ID = 0x0002  # AES-256-GCM
_AEAD_KEY_LENGTHS = {0x0001: 16, 0x0002: 32}

_HPKE = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_CURVE = ec.SECP256R1()


class PrimitiveFailure(Exception):
    """A primitive refused its input (bad tag, signature, key or encoding)."""


# -- P-256 keys ---------------------------------------------------------------


def generate_p256() -> ec.EllipticCurvePrivateKey:
    """Generate a P-256 private key from the OS CSPRNG."""
    return ec.generate_private_key(_CURVE)


def private_from_scalar(scalar: bytes) -> ec.EllipticCurvePrivateKey:
    """Load a P-256 private key from its 32-byte big-endian scalar.

    Raises:
        PrimitiveFailure: Wrong length, zero, or not below the group order.
    """
    if len(scalar) != SCALAR_LENGTH:
        raise PrimitiveFailure
    value = int.from_bytes(scalar, 'big')
    if not 0 < value < P256_ORDER:
        raise PrimitiveFailure
    return ec.derive_private_key(value, _CURVE)


def private_scalar(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """Return the 32-byte big-endian scalar of a P-256 private key."""
    return private_key.private_numbers().private_value.to_bytes(SCALAR_LENGTH, 'big')


def public_sec1(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """Return the uncompressed SEC1 encoding of a P-256 public key."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def load_public_sec1(data: bytes) -> ec.EllipticCurvePublicKey:
    """Load an uncompressed SEC1 P-256 point, checking it is on the curve.

    Raises:
        PrimitiveFailure: Not 65 bytes, not uncompressed, or not on P-256.
    """
    # APPSEC: compressed points are refused so every key has one encoding,
    # and OpenSSL's loader rejects off-curve points (invalid-curve attacks).
    if len(data) != SEC1_LENGTH or data[0] != 0x04:
        raise PrimitiveFailure
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, data)
    except ValueError as ex:
        raise PrimitiveFailure from ex


def load_public_b64(text: str) -> ec.EllipticCurvePublicKey:
    """Load a base64url SEC1 P-256 point (see :func:`load_public_sec1`).

    Long-lived keys (the manifest's org keys, pinned signing keys, advocate
    keys) are parsed again on every seal or verification, so recently loaded
    keys are remembered by their base64url text: only successful loads are
    cached, and a pyca public key object is immutable, so sharing it is safe.

    Raises:
        PrimitiveFailure: Not strict base64url, not 65 bytes, not
            uncompressed, or not on P-256.
    """
    if type(text) is str:  # noqa: E721 - exact type: hashable and immutable.
        return _load_public_b64_cached(text)
    return _load_public_b64_uncached(text)


def _load_public_b64_uncached(text: str) -> ec.EllipticCurvePublicKey:
    try:
        data = b64url_decode(text, length=SEC1_LENGTH)
    except ValueError as ex:
        raise PrimitiveFailure from ex
    return load_public_sec1(data)


_load_public_b64_cached = functools.lru_cache(maxsize=256)(_load_public_b64_uncached)


# -- HKDF and AES-GCM ---------------------------------------------------------


#: Hash objects are immutable descriptions of the algorithm: one is shared.
_SHA256 = hashes.SHA256()


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """Derive ``length`` bytes with HKDF-SHA256 (RFC 5869)."""
    return HKDF(algorithm=_SHA256, length=length, salt=salt, info=info).derive(ikm)


def aes_gcm_seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt with AES-GCM; returns ciphertext || 16-byte tag.

    NEVER REUSE A NONCE with a key. Callers draw it fresh from a CSPRNG.
    """
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aes_gcm_open(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """Decrypt and authenticate AES-GCM.

    Raises:
        PrimitiveFailure: The tag does not verify or the input is malformed.
    """
    return aes_gcm_open_with(AESGCM(key), nonce, ciphertext, aad)


def aes_gcm_key(key: bytes) -> AESGCM:
    """Return an AES-GCM object for ``key``, to seal or open many values with.

    The object holds the key: keep it no longer than the key itself.
    """
    return AESGCM(key)


def aes_gcm_seal_with(aead: AESGCM, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """:func:`aes_gcm_seal` with an object from :func:`aes_gcm_key`.

    NEVER REUSE A NONCE with a key. Callers draw it fresh from a CSPRNG.
    """
    return aead.encrypt(nonce, plaintext, aad)


def aes_gcm_open_with(aead: AESGCM, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """:func:`aes_gcm_open` with an object from :func:`aes_gcm_key`.

    Raises:
        PrimitiveFailure: The tag does not verify or the input is malformed.
    """
    try:
        return aead.decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError) as ex:
        raise PrimitiveFailure from ex


# -- HPKE (RFC 9180), base mode, DHKEM(P-256)/HKDF-SHA256/AES-256-GCM ---------


def hpke_seal(
    plaintext: bytes,
    recipient: ec.EllipticCurvePublicKey,
    info: bytes,
    *,
    ephemeral_ikm: bytes | None = None,
) -> tuple[bytes, bytes]:
    """Seal ``plaintext`` single-shot to ``recipient`` with empty AAD.

    Args:
        plaintext: The message.
        recipient: The recipient's P-256 public key.
        info: HPKE ``info`` (the application context binding).
        ephemeral_ikm: For known-answer vectors only. When given, the
            ephemeral key is ``DeriveKeyPair(ephemeral_ikm)`` and the RFC 9180
            steps below run instead of pyca's HPKE, which cannot take a fixed
            ephemeral key. The output is byte-identical to what @hpke/core
            produces with ``ekm`` set to the same bytes.

    Returns:
        ``(enc, ciphertext)``: the 65-byte encapsulated key and the AEAD
        ciphertext with its tag.
    """
    if ephemeral_ikm is None:
        sealed = _HPKE.encrypt(plaintext, recipient, info=info)
        return sealed[:SEC1_LENGTH], sealed[SEC1_LENGTH:]
    # APPSEC: reached only from deterministic twins used by tests and the
    # vector generator; the public API never passes ephemeral_ikm. Tests
    # check this path against RFC 9180 A.3.1, pyca's decrypt and @hpke/core.
    setup = hpke_setup_base_sender(recipient, info, ephemeral_ikm)
    return setup.enc, aes_gcm_seal(setup.key, setup.base_nonce, plaintext, b'')


def hpke_open(
    enc: bytes,
    ciphertext: bytes,
    recipient: ec.EllipticCurvePrivateKey,
    info: bytes,
) -> bytes:
    """Open a single-shot HPKE ciphertext with empty AAD.

    Raises:
        PrimitiveFailure: Wrong key or info, tampering, or an invalid ``enc``.
    """
    if len(enc) != SEC1_LENGTH:
        raise PrimitiveFailure
    try:
        return _HPKE.decrypt(enc + ciphertext, recipient, info=info)
    except (InvalidTag, ValueError) as ex:
        raise PrimitiveFailure from ex


@dataclasses.dataclass(frozen=True)
class HPKESenderSetup:
    """Outputs of RFC 9180 ``SetupBaseS`` (exposed for known-answer tests)."""

    enc: bytes
    shared_secret: bytes
    key: bytes
    base_nonce: bytes


def _i2osp(value: int, length: int) -> bytes:
    return value.to_bytes(length, 'big')


_KEM_SUITE_ID = b'KEM' + _i2osp(KEM_ID, 2)


def _hpke_suite_id(aead_id: int) -> bytes:
    return b'HPKE' + _i2osp(KEM_ID, 2) + _i2osp(KDF_ID, 2) + _i2osp(aead_id, 2)


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    # HKDF-Extract with an empty salt uses HashLen zero bytes (RFC 5869 2.2).
    mac = hmac.HMAC(salt or bytes(32), hashes.SHA256())
    mac.update(b'HPKE-v1' + suite_id + label + ikm)
    return mac.finalize()


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    labeled_info = _i2osp(length, 2) + b'HPKE-v1' + suite_id + label + info
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=labeled_info).derive(prk)


def hpke_derive_key_pair(ikm: bytes) -> ec.EllipticCurvePrivateKey:
    """RFC 9180 ``DeriveKeyPair`` for DHKEM(P-256, HKDF-SHA256)."""
    dkp_prk = _labeled_extract(_KEM_SUITE_ID, b'', b'dkp_prk', ikm)
    for counter in range(256):
        candidate = _labeled_expand(_KEM_SUITE_ID, dkp_prk, b'candidate', bytes([counter]), 32)
        value = int.from_bytes(candidate, 'big')  # P-256 bitmask is 0xff.
        if 0 < value < P256_ORDER:
            return ec.derive_private_key(value, _CURVE)
    raise PrimitiveFailure  # Probability about 2**-8192; RFC 9180 says abort.


def hpke_setup_base_sender(
    recipient: ec.EllipticCurvePublicKey,
    info: bytes,
    ephemeral_ikm: bytes,
    *,
    aead_id: int = AEAD_ID,
) -> HPKESenderSetup:
    """RFC 9180 ``Encap`` + ``KeySchedule`` (base mode) with a derived ephemeral key.

    ``aead_id`` may be 0x0001 (AES-128-GCM) so the RFC's own A.3.1 vector,
    which shares our KEM and KDF, can check this code.
    """
    ephemeral = hpke_derive_key_pair(ephemeral_ikm)
    dh = ephemeral.exchange(ec.ECDH(), recipient)
    enc = public_sec1(ephemeral)
    kem_context = enc + public_sec1(recipient)
    eae_prk = _labeled_extract(_KEM_SUITE_ID, b'', b'eae_prk', dh)
    shared_secret = _labeled_expand(_KEM_SUITE_ID, eae_prk, b'shared_secret', kem_context, 32)

    suite_id = _hpke_suite_id(aead_id)
    psk_id_hash = _labeled_extract(suite_id, b'', b'psk_id_hash', b'')
    info_hash = _labeled_extract(suite_id, b'', b'info_hash', info)
    context = b'\x00' + psk_id_hash + info_hash  # mode_base = 0x00
    secret = _labeled_extract(suite_id, shared_secret, b'secret', b'')
    key = _labeled_expand(suite_id, secret, b'key', context, _AEAD_KEY_LENGTHS[aead_id])
    base_nonce = _labeled_expand(suite_id, secret, b'base_nonce', context, NONCE_LENGTH)
    return HPKESenderSetup(enc=enc, shared_secret=shared_secret, key=key, base_nonce=base_nonce)


# -- ECDSA P-256 with SHA-256, raw r || s (WebCrypto's format) ---------------

# APPSEC: RFC 6979 deterministic nonces, so a signature never depends on the
# quality of the RNG at signing time (and vectors are byte-exact).
_ECDSA = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)


def ecdsa_sign(private_key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """Sign ``message``; returns the 64-byte ``r || s`` signature."""
    r, s = decode_dss_signature(private_key.sign(message, _ECDSA))
    return _i2osp(r, 32) + _i2osp(s, 32)


def ecdsa_verify(public_key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> None:
    """Verify a 64-byte ``r || s`` signature over ``message``.

    Raises:
        PrimitiveFailure: The signature is malformed or does not verify.
    """
    if len(signature) != SIGNATURE_LENGTH:
        raise PrimitiveFailure
    r = int.from_bytes(signature[:32], 'big')
    s = int.from_bytes(signature[32:], 'big')
    if not (0 < r < P256_ORDER and 0 < s < P256_ORDER):
        raise PrimitiveFailure
    try:
        public_key.verify(encode_dss_signature(r, s), message, _ECDSA)
    except InvalidSignature as ex:
        raise PrimitiveFailure from ex


# -- Argon2id -----------------------------------------------------------------


def argon2id(
    secret: bytes, *, salt: bytes, memory_kib: int, iterations: int, lanes: int, length: int = 32,
) -> bytes:
    """Derive ``length`` bytes with Argon2id (RFC 9106).

    Raises:
        PrimitiveFailure: pyca refused the parameters.
    """
    try:
        kdf = Argon2id(
            salt=salt, length=length, iterations=iterations, lanes=lanes, memory_cost=memory_kib)
        return kdf.derive(secret)
    except (ValueError, TypeError) as ex:
        raise PrimitiveFailure from ex


def argon2id_phc(secret: bytes, *, memory_kib: int, iterations: int, lanes: int) -> str:
    """Hash ``secret`` with a fresh 16-byte salt into a PHC string."""
    kdf = Argon2id(
        salt=os.urandom(16), length=32, iterations=iterations, lanes=lanes,
        memory_cost=memory_kib)
    return kdf.derive_phc_encoded(secret)


def argon2id_phc_verify(secret: bytes, encoded: str) -> bool:
    """Check ``secret`` against a PHC string in constant time (pyca's verify)."""
    try:
        Argon2id.verify_phc_encoded(secret, encoded)
    except (InvalidKey, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


# -- PEM export of signing keys (the admin's own machine only) ---------------


def private_to_pem(private_key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> bytes:
    """Export a private key as passphrase-encrypted PKCS #8 PEM."""
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def private_from_pem(data: bytes, passphrase: bytes) -> ec.EllipticCurvePrivateKey:
    """Load a passphrase-encrypted PKCS #8 PEM holding a P-256 key.

    Raises:
        PrimitiveFailure: Wrong passphrase, unencrypted, malformed, or not P-256.
    """
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError, UnsupportedAlgorithm) as ex:
        raise PrimitiveFailure from ex
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != _CURVE.name:
        raise PrimitiveFailure
    return key
