"""Login password hashing and the admin signing key's PEM export."""

from __future__ import annotations

import pytest

import keys
from keys import Argon2Params, InvalidCiphertext, SigningKey

pytestmark = pytest.mark.unit

PASSWORD = 'correct horse battery staple'


def test_hash_password_uses_the_owasp_floor_by_default():
    encoded = keys.hash_password(PASSWORD)
    assert encoded.startswith('$argon2id$v=19$m=19456,t=2,p=1$')
    assert keys.verify_password(PASSWORD, encoded)
    assert keys.DEFAULT_ARGON2 == Argon2Params(memory_kib=19456, iterations=2, lanes=1)


def test_cheaper_parameters_are_explicit_arguments():
    encoded = keys.hash_password(PASSWORD, 1024, 1)
    assert '$m=1024,t=1,p=1$' in encoded
    assert keys.verify_password(PASSWORD, encoded)


def test_hashes_are_salted():
    assert keys.hash_password(PASSWORD, 1024, 1) != keys.hash_password(PASSWORD, 1024, 1)


@pytest.mark.parametrize(('password', 'encoded'), [
    ('wrong password', None),
    (PASSWORD, 'not a phc string'),
    (PASSWORD, '$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaA'),
    (None, None),
    (PASSWORD, 12),
])
def test_verify_password_returns_false_for_anything_wrong(password, encoded):
    if encoded is None:
        encoded = keys.hash_password(PASSWORD, 1024, 1)
    assert keys.verify_password(password, encoded) is False


def test_hash_password_refuses_bad_parameters():
    with pytest.raises(ValueError):
        keys.hash_password(PASSWORD, 0, 1)
    with pytest.raises(TypeError):
        keys.hash_password(b'bytes', 1024, 1)


def test_signing_key_pem_round_trip():
    signing_key = SigningKey.generate()
    pem = signing_key.to_pem(PASSWORD)
    assert pem.startswith(b'-----BEGIN ENCRYPTED PRIVATE KEY-----')
    assert SigningKey.from_pem(pem, PASSWORD).public_b64() == signing_key.public_b64()


@pytest.mark.parametrize(('data', 'passphrase'), [
    (None, 'wrong passphrase!'),
    (b'-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n',
     PASSWORD),
    ('text, not bytes', PASSWORD),
])
def test_signing_key_from_pem_fails_opaquely(data, passphrase):
    if data is None:
        data = SigningKey.generate().to_pem(PASSWORD)
    with pytest.raises(InvalidCiphertext):
        SigningKey.from_pem(data, passphrase)
