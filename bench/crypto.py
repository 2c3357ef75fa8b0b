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

Timing on a shared host also measures the neighbours: when the host is busy,
the Python of fle/1 slows down more than the bare primitives' OpenSSL code, so
the ratio moves with the host's load. ``--instructions`` measures instead what
does not move: the machine instructions each side executes per call, counted
by valgrind's callgrind (needs ``valgrind`` on PATH; a few minutes). For each
of the four operations it runs this script twice under callgrind, with 0 and
with N calls after the same set-up and warm-up, and divides the difference by
N; the ratio of the counts is the format's overhead in work done.

    .venv/bin/python bench/crypto.py --instructions [--calls 2000]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import pathlib
import re
import shutil
import statistics
import subprocess
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


def _operations() -> dict:
    """Build the record, the keys and the four operations this benchmark compares.

    Returns:
        ``{'fle_seal', 'bare_seal', 'fle_open', 'bare_open'}`` -> a callable
        without arguments, plus ``'advocate'``: the advocate key, for the
        Argon2id unlock.
    """
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
    # RK, rkid and each nonce with an os.urandom call of its own; the
    # baseline draws its RK and nonces in one call, the least any sealer
    # pays). Each nonce is kept with its blob so the bare open does real
    # decryptions.
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
    return {'fle_seal': fle_seal, 'bare_seal': bare_seal_with_nonces, 'fle_open': fle_open,
            'bare_open': bare_open_real, 'advocate': advocate}


#: The operations, in the order --instructions reports them.
OPERATIONS = ('fle_seal', 'bare_seal', 'fle_open', 'bare_open')
#: Calls made before counting starts, so both counts start from the same
#: warmed-up interpreter (adaptive bytecode specialised, caches filled).
WARM_UP_CALLS = 50


def _count_calls(name: str, calls: int) -> None:
    """Set up, warm up, then make ``calls`` calls of one operation (run under callgrind)."""
    operation = _operations()[name]
    for _ in range(WARM_UP_CALLS + calls):
        operation()


def _instructions_of(name: str, calls: int) -> int:
    """Instructions one call of ``name`` executes: the difference of two callgrind runs."""
    counts = []
    for made in (0, calls):
        result = subprocess.run(
            ['valgrind', '--tool=callgrind', '--callgrind-out-file=/dev/null',
             sys.executable, __file__, '--count-calls', name, str(made)],
            capture_output=True, text=True, check=True,
            # Same string hashes in both runs, so dict and set work matches.
            env={**os.environ, 'PYTHONHASHSEED': '0'})
        found = re.search(r'Collected : (\d+)', result.stderr)
        if found is None:
            raise SystemExit(f'callgrind printed no instruction count for {name}')
        counts.append(int(found.group(1)))
    return round((counts[1] - counts[0]) / calls)


def _report_instructions(calls: int) -> None:
    """Print the instructions per call of the four operations and the two ratios."""
    if shutil.which('valgrind') is None:
        raise SystemExit('--instructions needs valgrind on PATH')
    # Two at a time: the machine has 2 cores, and counts do not depend on load.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        per_call = dict(zip(OPERATIONS, pool.map(
            lambda name: _instructions_of(name, calls), OPERATIONS)))
    print(f'record with {len(FIELDS)} identifying fields; machine instructions per call '
          f'(callgrind, {calls} calls after {WARM_UP_CALLS} warm-up calls)')
    for name in OPERATIONS:
        print(f'  {name:10s} {per_call[name]:>10,d}')
    for kind in ('seal', 'open'):
        ratio = per_call[f'fle_{kind}'] / per_call[f'bare_{kind}']
        print(f'{kind} overhead in instructions  fle/1 : bare primitives = {ratio:.2f}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--iterations', type=int, default=300)
    parser.add_argument('--batch', type=int, default=20,
                        help='calls per batch of one side (default 20)')
    parser.add_argument('--instructions', action='store_true',
                        help='count machine instructions per call with callgrind instead')
    parser.add_argument('--calls', type=int, default=2000,
                        help='calls counted per operation with --instructions (default 2000)')
    # Internal: what each callgrind run of --instructions executes.
    parser.add_argument('--count-calls', nargs=2, metavar=('OPERATION', 'CALLS'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.count_calls:
        _count_calls(args.count_calls[0], int(args.count_calls[1]))
        return
    if args.instructions:
        _report_instructions(args.calls)
        return
    operations = _operations()
    fle_seal, bare_seal_with_nonces = operations['fle_seal'], operations['bare_seal']
    fle_open, bare_open_real = operations['fle_open'], operations['bare_open']
    advocate = operations['advocate']
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
