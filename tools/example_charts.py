"""Make the example charts in docs/charts/ with ``fieldvault report --svg`` from generated data.

Starts a pouchdb-server and the app (served over loopback), stores a year of
generated program records for two teams (fictional, random with a fixed seed),
logs in a supervisor and a liaison through the CLI, and runs the report
command for each chart, so the charts show exactly what those roles get.

    .venv/bin/python tools/example_charts.py [--out docs/charts]
"""

from __future__ import annotations

import argparse
import datetime as dt
import pathlib
import random
import sys
import tempfile

from click.testing import CliRunner

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fieldvault import cli  # noqa: E402
from service.app import build_services, create_app  # noqa: E402
from service.cli import ensure_databases  # noqa: E402
from service.config import Config  # noqa: E402
from service.embedded_db import EmbeddedDB, free_port  # noqa: E402
from tests import factories  # noqa: E402
from tests.support.live import LiveServer  # noqa: E402

PASSWORD = 'example charts password'
AREAS = ('spa-4', 'spa-6', 'spa-8')
SOURCES = ('outreach', 'da_diversion', 'probation', 'dcfs', 'self')
AGES = ('10-13', '14-15', '16-17')


def _records(rng: random.Random) -> list[dict]:
    docs = []
    for month in range(1, 13):
        stamp = f'2025-{month:02d}-10T10:00:00Z'
        for owner in ('worker-a', 'worker-b'):
            for _ in range(rng.randint(15, 40)):
                docs.append(factories.fake_sealed(factories.make_screening(
                    owner=owner, org='org-default', administered_at=stamp)))
            for _ in range(rng.randint(4, 14)):
                history = factories._history(factories.ACTIVE_PATH, owner)
                for entry in history:
                    entry['at'] = stamp
                case = factories.fake_sealed(factories.make_enrollment(
                    owner=owner, org='org-default', history=history, created_at=stamp,
                    updated_at=stamp, consented_at=stamp, service_area_code=rng.choice(AREAS),
                    age_band=rng.choice(AGES), referral_source=rng.choice(SOURCES)))
                docs.append(case)
                # Weekly check-ins; the first one is the first service.
                first = dt.datetime(2025, month, 10, 10, tzinfo=dt.timezone.utc) + dt.timedelta(
                    hours=rng.randint(4, 120))
                for week in range(1, rng.randint(2, 6)):
                    at = first + dt.timedelta(days=7 * (week - 1))
                    attended = week == 1 or rng.random() < 0.8
                    docs.append(factories.fake_sealed(factories.make_weekly_checkin(
                        owner=owner, org='org-default', client_id=case['client_id'],
                        enrollment_id=case['_id'], week_number=week, attended=attended,
                        checked_in_at=at.strftime('%Y-%m-%dT%H:%M:%SZ'),
                        services_received=['education'] if attended else factories.OMIT)))
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=str(ROOT / 'docs' / 'charts'))
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        couch = EmbeddedDB(free_port(), pathlib.Path(tmp) / 'db').start()
        server = None
        try:
            config = Config(couchdb_url=couch.url, db_prefix='charts_')
            services = build_services(config)
            ensure_databases(services)
            services.couch.bulk_docs(services.db('records'), _records(random.Random(15)))
            for name, roles, team in (('worker-a', ['worker'], 'north'),
                                      ('worker-b', ['worker'], 'south'),
                                      ('sup-north', ['supervisor'], 'north'),
                                      ('liaison-1', ['liaison'], None)):
                services.accounts.create_user(name, PASSWORD, roles, team=team)
            server = LiveServer(create_app(services=services))
            runner = CliRunner()
            for user, charts in (
                    ('sup-north', [('enrollments-by-area-month.svg',
                                    ['enrollments', '--period', 'month', '--by',
                                     'service_area']),
                                   ('checkins-by-area-quarter.svg',
                                    ['checkins', '--by', 'service_area']),
                                   ('first-service-hours-by-area.svg',
                                    ['first_service_hours', '--by', 'service_area'])]),
                    ('liaison-1', [('liaison-enrollments-by-source.svg',
                                    ['enrollments', '--by', 'referral_source'])])):
                home = str(pathlib.Path(tmp) / user)
                login = runner.invoke(cli, ['login', '--server', server.url, '--username', user,
                                            '--home', home, '--password', PASSWORD])
                if login.exit_code:
                    raise SystemExit(login.output)
                for filename, report_args in charts:
                    result = runner.invoke(cli, ['report', *report_args, '--home', home,
                                                 '--svg', str(out / filename)])
                    if result.exit_code:
                        raise SystemExit(result.output)
                    print(f'{out / filename}\n{result.output}')
        finally:
            if server is not None:
                server.stop()
            couch.stop()


if __name__ == '__main__':
    main()
