"""What each upstream request of one push batch costs the database.

A PouchDB push batch of sealed records with their envelopes (50 + 50, as a
tablet captures them) is replayed straight against a fresh pouchdb-server,
request by request, in the shapes two paths send:

- **direct**, PouchDB into one database: read the checkpoint, ``_revs_diff``
  of 100 ids, ``_bulk_docs`` of 100, write the checkpoint;
- **gateway**, as ``sync/push.py`` sends it: ``_revs_diff`` on records and on
  keyvault, the owner lookup (``_bulk_get`` on records), the envelope lookup
  (``_all_docs`` by key on keyvault), ``_bulk_docs`` on each, the
  ``push_accepted`` audit event and the checkpoint write (its read is
  answered from memory).

Each request shape runs ``--requests`` times per round, rounds interleaved,
on fresh ids; the CPU time of pouchdb-server (``/proc/<pid>/stat``) per
request is the median over rounds. Printed: each step, the sum per batch of
each path, and the ratio of the sums, with and without the two lookups, so
what the push rules cost the database is told apart from what storing
records and envelopes in their own databases costs.

usage: python -m bench.push_steps [--requests 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from bench.sync import _cpu_seconds
from service.embedded_db import EmbeddedDB, free_port
from tests.integration.records import sealed_contact

ORG = 'org-bench'
HALF = 50


def _with_rev(doc: dict[str, Any]) -> dict[str, Any]:
    """Give a document a first revision, as PouchDB sends it with ``new_edits=false``."""
    digest = uuid.uuid4().hex
    return dict(doc, _rev=f'1-{digest}', _revisions={'start': 1, 'ids': [digest]})


def _pairs() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return fresh sealed records and their envelopes, ``HALF`` of each."""
    records, envelopes = [], []
    for _ in range(HALF):
        record, envelope = sealed_contact('w-bench', ORG)
        records.append(_with_rev(record))
        envelopes.append(_with_rev(envelope))
    return records, envelopes


def _steps(client: httpx.Client) -> dict[str, tuple[str, Callable[[], Any]]]:
    """Name -> (path, one request on fresh documents)."""

    def revs(docs: list[dict[str, Any]]) -> dict[str, list[str]]:
        return {doc['_id']: [doc['_rev']] for doc in docs}

    def checkpoint(db: str) -> Callable[[], Any]:
        def write() -> Any:
            doc_id = f'_local/{uuid.uuid4().hex}'
            return client.put(f'/{db}/{doc_id}', json={'last_seq': 1})
        return write

    def post(db: str, endpoint: str, body: Callable[[], Any]) -> Callable[[], Any]:
        return lambda: client.post(f'/{db}/{endpoint}', json=body())

    def both() -> list[dict[str, Any]]:
        records, envelopes = _pairs()
        return records + envelopes
    return {
        'GET _local (checkpoint read)': (
            'direct', lambda: client.get('/direct/_local/checkpoint')),
        '_revs_diff, 100 ids': ('direct', post('direct', '_revs_diff', lambda: revs(both()))),
        '_bulk_docs, 100 documents': ('direct', post('direct', '_bulk_docs', lambda: {
            'docs': both(), 'new_edits': False})),
        'PUT _local (checkpoint write)': ('both', checkpoint('direct')),
        '_revs_diff on records, 50 ids': ('gateway', post('records', '_revs_diff',
                                                          lambda: revs(_pairs()[0]))),
        '_revs_diff on keyvault, 50 ids': ('gateway', post('keyvault', '_revs_diff',
                                                           lambda: revs(_pairs()[1]))),
        'owner lookup: _bulk_get on records, 50 ids': ('lookup', post(
            'records', '_bulk_get', lambda: {'docs': [{'id': doc['_id']}
                                                      for doc in _pairs()[0]]})),
        'envelope lookup: _all_docs on keyvault, 50 keys': ('lookup', post(
            'keyvault', '_all_docs', lambda: {'keys': [doc['_id'] for doc in _pairs()[1]]})),
        '_bulk_docs on records, 50 records': ('gateway', post('records', '_bulk_docs', lambda: {
            'docs': _pairs()[0], 'new_edits': False})),
        '_bulk_docs on keyvault, 50 envelopes': ('gateway', post(
            'keyvault', '_bulk_docs', lambda: {'docs': _pairs()[1], 'new_edits': False})),
        'PUT audit event': ('gateway', lambda: client.put(
            f'/audit/event:{uuid.uuid4().hex}', json={
                'type': 'audit_event', 'kind': 'push_accepted', 'prev': uuid.uuid4().hex,
                'details': {'db': 'records', 'records': HALF, 'envelopes': HALF}})),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--requests', type=int, default=200, help='requests per step and round')
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()
    print(f'load average at the start: {" ".join(f"{x:.2f}" for x in os.getloadavg())}')
    with tempfile.TemporaryDirectory(prefix='fv-push-steps-') as workdir:
        server = EmbeddedDB(free_port(), workdir).start()
        try:
            assert server.process is not None
            pid = server.process.pid
            with httpx.Client(base_url=server.url, timeout=60,
                              headers={'Accept-Encoding': 'identity'}) as client:
                for db in ('direct', 'records', 'keyvault', 'audit'):
                    client.put(f'/{db}').raise_for_status()
                client.put('/direct/_local/checkpoint', json={'last_seq': 1}).raise_for_status()
                steps = _steps(client)
                samples: dict[str, list[float]] = {name: [] for name in steps}
                for _round in range(args.rounds):
                    for name, (_path, request) in steps.items():
                        before = _cpu_seconds(pid)
                        for _ in range(args.requests):
                            answer = request()
                            if answer.status_code >= 300:
                                raise SystemExit(f'{name}: {answer.status_code} {answer.text}')
                        after = _cpu_seconds(pid)
                        assert before is not None and after is not None
                        samples[name].append(1000 * (after - before) / args.requests)
        finally:
            server.stop()
    cost = {name: statistics.median(values) for name, values in samples.items()}
    print(f'pouchdb-server CPU per request (ms), median of {args.rounds} rounds of '
          f'{args.requests} requests; one batch = {HALF} sealed records + {HALF} envelopes')
    for name, (path, _request) in steps.items():
        print(f'  {path:8s} {name:48s} {cost[name]:6.2f}  (rounds '
              f'{", ".join(f"{value:.2f}" for value in samples[name])})')
    direct = sum(cost[name] for name, (path, _r) in steps.items() if path in ('direct', 'both'))
    stored = sum(cost[name] for name, (path, _r) in steps.items() if path in ('gateway', 'both'))
    lookups = sum(cost[name] for name, (path, _r) in steps.items() if path == 'lookup')
    print(f'per batch: direct {direct:.1f} ms; gateway {stored + lookups:.1f} ms '
          f'(ratio {(stored + lookups) / direct:.2f}); gateway without the owner and envelope '
          f'lookups {stored:.1f} ms (ratio {stored / direct:.2f})')
    print(f'load average at the end: {" ".join(f"{x:.2f}" for x in os.getloadavg())}')


if __name__ == '__main__':
    main()
