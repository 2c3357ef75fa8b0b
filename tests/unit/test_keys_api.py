"""The public surface of ``keys`` and the shape of its errors."""

from __future__ import annotations

import inspect

import pytest

import keys
from keys import errors

pytestmark = pytest.mark.unit

EXPECTED_PUBLIC_NAMES = {
    # errors
    'KeysError', 'InvalidCiphertext', 'InvalidManifest', 'InvalidKeyMaterial', 'WeakPassphrase',
    # passwords and passphrases
    'hash_password', 'verify_password', 'Argon2Params', 'DEFAULT_ARGON2', 'MIN_PASSPHRASE_LENGTH',
    # keys
    'SUITE', 'OrgKeyPair', 'OrgPrivateKey', 'SigningKey', 'fingerprint', 'AdvocateKey',
    'RECOVERY_ADVOCATE', 'Keyring',
    # manifests, certificates, grants
    'build_manifest', 'sign_manifest', 'verify_manifest', 'active_key',
    'certify_advocate_key', 'verify_certificate', 'seal_grant', 'open_grant', 'validate_grant',
    # shares (a holder passes a version on)
    'seal_share', 'open_share', 'validate_share', 'open_holdings',
    # records and envelopes
    'seal_document', 'seal_document_at_time', 'reseal_fields', 'reseal_fields_at_time',
    'open_document',
    'open_envelope', 'rewrap_envelope', 'validate_envelope',
}


def test_all_matches_the_intended_surface():
    assert set(keys.__all__) == EXPECTED_PUBLIC_NAMES
    assert len(keys.__all__) == len(set(keys.__all__))


def test_every_public_name_exists():
    for name in keys.__all__:
        assert hasattr(keys, name), name


def test_public_names_have_docstrings():
    for name in keys.__all__:
        value = getattr(keys, name)
        if inspect.isfunction(value) or inspect.isclass(value):
            assert inspect.getdoc(value), name


def test_no_public_function_takes_a_nonce_salt_or_ephemeral_key():
    # APPSEC: nonce reuse is prevented by construction (pitfall 1).
    forbidden = {'nonce', 'iv', 'salt', 'rng', 'ephemeral_ikm', 'ekm'}
    for name in keys.__all__:
        value = getattr(keys, name)
        callables = [value]
        if inspect.isclass(value):
            callables = [member for _, member in inspect.getmembers(value, callable)
                         if not _.startswith('_')]
        for function in callables:
            try:
                parameters = inspect.signature(function).parameters
            except (TypeError, ValueError):
                continue
            assert not forbidden & set(parameters), f'{name}.{function.__name__}'


def test_error_tree():
    for error in (errors.InvalidCiphertext, errors.InvalidManifest,
                  errors.InvalidKeyMaterial, errors.WeakPassphrase):
        assert issubclass(error, errors.KeysError)
    assert not issubclass(errors.InvalidCiphertext, errors.InvalidKeyMaterial)


def test_opaque_errors_have_one_fixed_message():
    assert str(errors.InvalidCiphertext()) == errors.InvalidCiphertext.MESSAGE
    assert str(errors.InvalidManifest()) == errors.InvalidManifest.MESSAGE
    with pytest.raises(TypeError):
        errors.InvalidCiphertext('detail')  # type: ignore[call-arg]


def test_weak_passphrase_names_the_minimum():
    assert '12' in str(errors.WeakPassphrase(12))


def test_org_private_key_is_the_org_key_pair_class():
    assert keys.OrgPrivateKey is keys.OrgKeyPair
