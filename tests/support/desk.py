"""A small world for desk tests: the key ceremony through the real CLI, records
sealed on a worker's side, and a desk of an advocate (or supervisor) on
loopback with an injectable clock."""

from __future__ import annotations

import json

import keys
import schemas
from fieldvault_client.desk.app import DeskServer
from fieldvault_client.desk.session import DeskSession
from fieldvault_client.home import Home
from tests import factories
from tests.support.lifecycle import Ceremony

#: Plaintext that must never reach the service, its databases or its logs.
CANARY_NOTE = 'Canary note Quetzalcoatl-5521'
CANARY_CORRECTION = 'Corrected canary Tlaloc-8830'
CANARY_CONFLICT = 'Conflict canary Xochitl-4410'


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class DeskWorld:
    """The ceremony, a team's records and one foreign record."""

    def __init__(self, live, users, tmp_path, test_config, services) -> None:
        self.services = services
        self.org = test_config.org
        self.ceremony = Ceremony(live.url, tmp_path, test_config.org,
                                 lambda name, roles, team: users.create(name, roles, team=team))
        self.ceremony.setup(advocates=('adv-1',), supervisors=('sup-1',), workers=('worker-1',))
        users.create('worker-b', ['worker'], team='team-b')
        manifest = self.ceremony.manifest()
        self.contact = self._seal(factories.make_contact(
            owner='worker-1', org=self.org, notes=CANARY_NOTE, youth_code='quiet-river-07'),
            manifest)
        self.screening = self._seal(factories.make_screening(
            owner='worker-1', org=self.org, youth_code='quiet-river-07'), manifest)
        self.other = self._seal(factories.make_contact(
            owner='worker-1', org=self.org, youth_code='brave-stone-11',
            contact_at='2026-02-01T08:00:00Z'), manifest)
        self.foreign = self._seal(factories.make_contact(
            owner='worker-b', org=self.org, youth_code='quiet-river-07'), manifest)
        self.desks: list[DeskServer] = []

    def _seal(self, plain, manifest) -> dict:
        sealed, envelope = keys.seal_document(
            plain, paths=schemas.identifying_paths(plain['type']), org=self.org,
            manifest_body=manifest)
        self.services.couch.put(self.services.db('records'), sealed)
        self.services.couch.put(self.services.db('keyvault'), envelope)
        return sealed

    def make_conflict(self, record: dict) -> tuple[str, str]:
        """Give ``record`` a second open revision, as two tablets editing offline make.

        Returns the two leaf revisions; the second carries a resealed note.
        """
        records_db = self.services.db('records')
        stored = self.services.couch.get(records_db, record['_id'])
        base_hash = stored['_rev'].split('-', 1)[1]
        moved, envelope = keys.reseal_fields(stored, {'/notes': CANARY_CONFLICT}, org=self.org,
                                             manifest_body=self.ceremony.manifest())
        self.services.couch.put(self.services.db('keyvault'), envelope)
        left = dict(stored, _rev='2-' + 'b' * 32, contact_type='drop_in',
                    _revisions={'start': 2, 'ids': ['b' * 32, base_hash]})
        right = dict(moved, _rev='2-' + 'c' * 32, contact_type='hotline',
                     _revisions={'start': 2, 'ids': ['c' * 32, base_hash]})
        self.services.couch.bulk_docs(records_db, [left, right], new_edits=False)
        return left['_rev'], right['_rev']

    def desk(self, name: str, *, idle_seconds: float = 600, clock=None) -> DeskServer:
        session = DeskSession(Home(self.ceremony.homes[name]), idle_seconds=idle_seconds,
                              clock=clock or FakeClock())
        server = DeskServer(session).start()
        self.desks.append(server)
        return server

    def stop(self) -> None:
        for server in self.desks:
            server.stop()

    def server_side_text(self) -> str:
        """Every byte the service keeps: each database's documents, all revisions."""
        out = []
        for logical in ('records', 'keyvault', 'directory', 'config', 'audit', 'quarantine'):
            physical = self.services.db(logical)
            rows = self.services.couch.all_docs(physical, include_docs=True)
            for row in rows:
                out.append(json.dumps(row))
                doc = row.get('doc') or {}
                for rev in self.services.couch.get(physical, row['id'],
                                                   conflicts='true').get('_conflicts', []):
                    out.append(json.dumps(self.services.couch.get(physical, row['id'], rev=rev)))
        return '\n'.join(out)
