"""Cost of sealing and opening a typical intake record against the bare primitives.

A typical record has 8 identifying fields. Sealing it costs one HPKE seal of
the record key plus 8 AES-256-GCM encryptions under fresh nonces, with one
HKDF derivation of the AES key; opening costs one HPKE open, one HKDF and
8 AES-GCM decryptions. (fle/1 derives a second HKDF output, the key
commitment; that counts as format overhead here.) The baseline runs
exactly those primitives on the same sizes, interleaved with the fle/1 calls in
the same run, so the printed ratio is the format's own overhead (JSON,
padding, PAE, base64url, checks). Also reports one Argon2id unlock of an
advocate key at the default parameters (19 MiB, t=2).

On a shared machine another process can take the CPU for milliseconds at a
time, which moves a long timing block of one side only. So each round runs
the two sides in small alternating batches (which side goes first alternates
too), pairs each fle/1 batch with the bare batch next to it, and reports the
median of the per-pair ratios: a disturbance then spoils one pair instead of
one side's whole block. Both sides run the same calls as always, with the
garbage collector as in normal operation.

    .venv/bin/python bench/crypto.py [--rounds 5] [--iterations 300] [--batch 20]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The baseline needs the primitives themselves; bench/ is outside the
# packages whose hazmat imports the boundary test polices.
from cryptography.hazmat.primitives import hashes, hpke  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402
from cryptography.hazmat.primitives.kdf.hkdf import HKDF  # noqa: E402

import keys  # noqa: E402

ORG = 'org-bench'
FIELDS = {
    'legal_first_name': 'Maria', 'legal_last_name': 'Example-Lastname',
    'preferred_name': 'Mari', 'date_of_birth': '2009-04-02',
    'phones': ['+15555550123'], 'email': 'someone@example.org',
    'current_location_or_address': '1200 Example Avenue, Apt 4, Los Angeles',
    'aliases': ['M', 'Mimi'],
}
PATHS = [f'/{name}' for name in FIELDS]


def _record() -> dict:
    return {'_id': 'identity:0190f6a2-5b7e-7c1a-9d1e-4b0c2d7f8a11', 'type': 'identity',
            'schema': 'identity/1', 'org': ORG, 'owner': 'worker-1', **FIELDS}


def _time(fn, iterations: int) -> float:
    started = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - started) / iterations


def _paired(fle, bare, *, iterations: int, batch: int) -> tuple[list[float], list[float]]:
    """Time ``fle`` and ``bare`` over ``iterations`` calls each, in alternating batches.

    Returns:
        ``(fle_times, bare_times)``: per-call seconds of each batch, where
        ``fle_times[i]`` and ``bare_times[i]`` ran back to back.
    """
    fle_times, bare_times = [], []
    for index in range(max(1, iterations // batch)):
        # Alternate which side goes first, so neither always runs on a
        # cache or clock state the other one left behind.
        if index % 2:
            bare_times.append(_time(bare, batch))
            fle_times.append(_time(fle, batch))
        else:
            fle_times.append(_time(fle, batch))
            bare_times.append(_time(bare, batch))
    return fle_times, bare_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--iterations', type=int, default=300)
    parser.add_argument('--batch', type=int, default=20,
                        help='calls per batch of one side (default 20)')
    args = parser.parse_args()

    org_key = keys.OrgKeyPair.generate('oek-bench')
    signing = keys.SigningKey.generate()
    manifest = keys.build_manifest(ORG, 1, [org_key.manifest_entry('active')])
    advocate = keys.AdvocateKey.generate('adv-bench')
    grant = keys.seal_grant(org_key, advocate.public_record(), org=ORG, granted_by='admin-1',
                            signing_key=signing)
    keyring = keys.Keyring.from_grants([grant], advocate, org=ORG,
                                       pinned_public_b64=signing.public_b64())
    record = _record()
    sealed, envelope = keys.seal_document(record, paths=PATHS, org=ORG, manifest_body=manifest)

    # The bare primitives on the same sizes.
    suite = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    recipient = ec.generate_private_key(ec.SECP256R1())
    recipient_public = recipient.public_key()
    plaintexts = [os.urandom(32) for _ in FIELDS]  # each padded value fits 32 bytes

    # A correct AES-GCM seal draws a fresh nonce per encryption (fle/1 draws
    # RK, rkid and all nonces in one os.urandom call; the baseline draws its
    # RK and nonces the same way). Each nonce is kept with its blob so the
    # bare open does real decryptions.
    nonce_bytes = 12 * len(FIELDS)

    def bare_seal_with_nonces():
        randomness = os.urandom(32 + nonce_bytes)
        rk = randomness[:32]
        aead = AESGCM(HKDF(hashes.SHA256(), 32, b'salt', b'info').derive(rk))
        nonces = [randomness[32 + 12 * index:44 + 12 * index] for index in range(len(FIELDS))]
        return suite.encrypt(rk, recipient_public, info=b'info'), [
            (nonce, aead.encrypt(nonce, value, b'aad')) for nonce, value in zip(nonces, plaintexts)]

    bare_envelope, bare_blobs = bare_seal_with_nonces()

    def bare_open_real():
        rk = suite.decrypt(bare_envelope, recipient, info=b'info')
        aead = AESGCM(HKDF(hashes.SHA256(), 32, b'salt', b'info').derive(rk))
        return [aead.decrypt(nonce, blob, b'aad') for nonce, blob in bare_blobs]

    def fle_seal():
        return keys.seal_document(record, paths=PATHS, org=ORG, manifest_body=manifest)

    def fle_open():
        return keys.open_document(sealed, envelopes=[envelope], keyring=keyring, paths=PATHS,
                                  org=ORG)

    assert fle_open()['legal_first_name'] == 'Maria'
    results = {name: [] for name in ('fle_seal', 'bare_seal', 'fle_open', 'bare_open')}
    ratios = {'seal': [], 'open': []}
    for _ in range(args.rounds):
        for kind, fle, bare in (('seal', fle_seal, bare_seal_with_nonces),
                                ('open', fle_open, bare_open_real)):
            fle_times, bare_times = _paired(
                fle, bare, iterations=args.iterations, batch=args.batch)
            results[f'fle_{kind}'].extend(fle_times)
            results[f'bare_{kind}'].extend(bare_times)
            ratios[kind].extend(f / b for f, b in zip(fle_times, bare_times))
    median = {name: statistics.median(values) for name, values in results.items()}
    pairs = len(ratios['seal'])
    print(f'record with {len(FIELDS)} identifying fields, {args.rounds} rounds x '
          f'{args.iterations} iterations per side, in batches of {args.batch} '
          f'({pairs} fle/bare pairs; medians)')
    for name in ('fle_seal', 'bare_seal', 'fle_open', 'bare_open'):
        print(f'  {name:10s} {median[name] * 1e6:9.1f} us')
    for kind in ('seal', 'open'):
        quartiles = statistics.quantiles(ratios[kind], n=4)
        print(f'{kind} overhead  fle/1 : bare primitives = {statistics.median(ratios[kind]):.2f}'
              f'  (median of per-pair ratios; quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f})')

    wrapped = advocate.wrap('a long benchmark passphrase')
    unlocks = []
    for _ in range(3):
        started = time.perf_counter()
        keys.AdvocateKey.unwrap(wrapped, 'a long benchmark passphrase')
        unlocks.append(time.perf_counter() - started)
    print(f'Argon2id unlock (m=19 MiB, t=2, p=1): {statistics.median(unlocks) * 1000:.0f} ms '
          f'(median of 3)')


if __name__ == '__main__':
    main()
