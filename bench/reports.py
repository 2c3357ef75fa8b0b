"""The monthly report from CouchDB views against a full scan of the records.

One pouchdb-server, one records database of ``--records`` documents (a mix of
screenings, cases, check-ins and referrals over 24 months; each check-in and
referral belongs to a case). A monthly report is read through
``service.program.Reports`` and computed by a full scan
(``_all_docs?include_docs=true`` paged, counted in Python), side by side:
``--measure screenings`` (the ``counts`` view, grouped) or ``--measure
checkins`` by the service area of each check-in's case (the ``linked`` view,
grouped, joined to the ``dims`` view of the cases it names).

1. first read: the view is built from nothing, then read;
2. after ``--added`` new records: the view catches up on the changes only.

Prints seconds and the ratios view / scan.

    .venv/bin/python bench/reports.py [--records 100000] [--added 100] [--rounds 3]
        [--measure screenings|checkins]
"""

from __future__ import annotations

import argparse
import copy
import pathlib
import statistics
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.accounts import Principal  # noqa: E402
from service.app import build_services  # noqa: E402
from service.cli import ensure_databases  # noqa: E402
from service.config import Config  # noqa: E402
from service.embedded_db import EmbeddedDB, free_port  # noqa: E402
from service.program import Reports  # noqa: E402
from tests import factories  # noqa: E402

TEMPLATES = {name: factories.fake_sealed(factories.make_record(name, owner='w-bench'))
             for name in ('screening', 'enrollment', 'weekly_checkin', 'referral')}
MIX = ('screening', 'screening', 'enrollment', 'weekly_checkin', 'weekly_checkin', 'referral')
ADMIN = Principal(kind='user', id='bench-admin', roles=('admin',))


def _docs(count: int, start: int) -> list[dict]:
    docs: list[dict] = []
    case = copy.deepcopy(TEMPLATES['enrollment'])
    for index in range(start, start + count):
        doc_type = MIX[index % len(MIX)]
        doc = copy.deepcopy(TEMPLATES[doc_type])
        doc['_id'] = f'{doc_type}:{uuid.uuid4()}'
        month = f'{2024 + (index // 12) % 2}-{index % 12 + 1:02d}'
        stamp = f'{month}-15T10:00:00Z'
        for field in ('administered_at', 'checked_in_at'):
            if field in doc:
                doc[field] = stamp
        if doc_type == 'enrollment':
            for entry in doc['history']:
                entry['at'] = stamp
            doc['client_id'] = str(uuid.uuid4())
            doc['service_area_code'] = f'spa-{index % 8 + 1}'
            case = doc
        elif doc_type in ('weekly_checkin', 'referral'):
            doc.update(enrollment_id=case['_id'], client_id=case['client_id'])
        docs.append(doc)
    return docs


def full_scan(services, measure: str) -> dict[str, int]:
    """The same monthly count, by reading every record (check-ins joined to their case)."""
    counts: dict[str, int] = {}
    areas: dict[str, str] = {}
    checkins: list[tuple[str, str]] = []
    for doc in services.couch.iter_prefix(services.db('records'), '', page_size=2000):
        if measure == 'screenings' and doc.get('type') == 'screening':
            month = doc['administered_at'][:7]
            counts[month] = counts.get(month, 0) + 1
        elif doc.get('type') == 'enrollment':
            areas[doc['_id']] = doc.get('service_area_code', 'unknown')
        elif measure == 'checkins' and doc.get('type') == 'weekly_checkin':
            checkins.append((doc['checked_in_at'][:7], doc['enrollment_id']))
    for month, case_id in checkins:
        key = f'{month} {areas.get(case_id, "unknown")}'
        counts[key] = counts.get(key, 0) + 1
    return counts


def timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--records', type=int, default=100_000)
    parser.add_argument('--added', type=int, default=100)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--measure', choices=('screenings', 'checkins'), default='screenings')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        couch = EmbeddedDB(free_port(), tmp).start()
        try:
            config = Config(couchdb_url=couch.url, db_prefix='bench_', org='org-test')
            services = build_services(config)
            ensure_databases(services)
            # A first build over every record outlasts the client's default timeout.
            reports = Reports(services, view_timeout=3600)
            records = services.db('records')
            loaded, started = 0, time.perf_counter()
            while loaded < args.records:
                batch = min(2000, args.records - loaded)
                services.couch.bulk_docs(records, _docs(batch, loaded))
                loaded += batch
            print(f'loaded {loaded} records in {time.perf_counter() - started:.1f} s',
                  flush=True)

            def view_read():
                if args.measure == 'screenings':
                    report = reports.report('screenings', {'period': 'month'}, ADMIN)
                    return dict(zip(report['rows'], report['row_totals']))
                report = reports.report('checkins', {'period': 'month', 'by': 'service_area'},
                                        ADMIN)
                return {f'{label} {column}': report['cells'][r][c]
                        for r, label in enumerate(report['rows'])
                        for c, column in enumerate(report['columns'])}
            first_view, by_view = timed(view_read)
            scans = [timed(lambda: full_scan(services, args.measure)) for _ in range(args.rounds)]
            first_scan = statistics.median(seconds for seconds, _ in scans)
            counted = scans[0][1]
            assert all(by_view[m] is None or by_view[m] == counted.get(m, 0) for m in by_view), \
                'view and scan disagree'
            services.couch.bulk_docs(records, _docs(args.added, loaded))
            after_added = timed(view_read)[0]
            again = [timed(view_read)[0] for _ in range(args.rounds)]
            scans = [timed(lambda: full_scan(services, args.measure))[0]
                     for _ in range(args.rounds)]
            scan = statistics.median(scans)
            print(f'{args.measure}: records {args.records}, then {args.added} added; '
                  f'scan = median of '
                  f'{args.rounds}')
            print(f'first read:    view {first_view:8.2f} s   full scan {first_scan:8.2f} s   '
                  f'ratio view/scan {first_view / first_scan:6.3f}')
            print(f'after {args.added:>4} new: view {after_added:8.3f} s   full scan '
                  f'{scan:8.2f} s   ratio view/scan {after_added / scan:6.4f}')
            print(f'unchanged:     view {statistics.median(again):8.3f} s   full scan '
                  f'{scan:8.2f} s   ratio view/scan {statistics.median(again) / scan:6.4f}')
        finally:
            couch.stop()


if __name__ == '__main__':
    main()
