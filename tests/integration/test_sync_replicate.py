"""The server-side replicator stand-in: pouchdb-server's ``POST /_replicate``
(a PouchDB replicator running inside the database server, credentials in the
gateway URL as a CouchDB replication document carries them) pulling from and
pushing to the gateway. docs/SYNC.md lists what of ``couch_replicator`` this
does not exercise."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from service.embedded_db import EmbeddedDB, free_port
from sync.couch import CouchDBClient
from tests.integration.conftest import ORG
from tests.integration.records import publish_test_manifest, sealed_contact

pytestmark = pytest.mark.integration


def _gateway_url(stack, creds: dict, db: str) -> str:
    parts = urlsplit(stack.service.url)
    return f'http://{creds["device_id"]}:{creds["secret"]}@{parts.netloc}/sync/{db}'


def _replicate(couch_url: str, source: str, target: str) -> httpx.Response:
    return httpx.post(couch_url + '/_replicate', json={'source': source, 'target': target},
                      timeout=120)


@pytest.fixture
def replicator(tmp_path):
    """A second pouchdb-server that runs the replications (its own databases).

    Not the session server: pouchdb-server 4.2.0 dies on a replication that
    ends in 401 (express-pouchdb leaves the replication's ``error`` event
    unhandled), which the revoked-device case provokes on purpose.
    """
    server = EmbeddedDB(free_port(), tmp_path / 'replicator').start()
    client = CouchDBClient(server.url)
    yield server, client
    client.close()
    server.stop()


def test_server_side_replicator_pulls_and_pushes_through_the_gateway(stack, replicator):
    couch, db = stack.services.couch, stack.services.db
    couch_server, local = replicator
    creds = stack.enroll('w-gina')
    mine = [sealed_contact('w-gina', ORG)[0] for _ in range(3)]
    theirs = [sealed_contact('w-hal', ORG) for _ in range(2)]
    couch.bulk_docs(db('records'), mine + [doc for doc, _env in theirs])
    couch.bulk_docs(db('keyvault'), [env for _doc, env in theirs])
    couch.put(db('config'), {'_id': 'service-areas', 'areas': []})

    # Pull: the gateway is the source.
    replica = f'{stack.services.config.db_prefix}replica_{uuid.uuid4().hex[:6]}'
    pulled = _replicate(couch_server.url, _gateway_url(stack, creds, 'records'), replica)
    assert pulled.status_code == 200, pulled.text
    assert pulled.json()['ok'] and pulled.json()['docs_written'] == 3
    assert sorted(row['id'] for row in local.all_docs(replica)) == sorted(
        doc['_id'] for doc in mine)
    config_replica = replica + '_config'
    config = _replicate(couch_server.url, _gateway_url(stack, creds, 'config'), config_replica)
    assert config.status_code == 200, config.text
    assert 'service-areas' in {row['id'] for row in local.all_docs(config_replica)}
    # A second pull resumes from the checkpoint it stored through the gateway.
    again = _replicate(couch_server.url, _gateway_url(stack, creds, 'records'), replica)
    assert again.status_code == 200 and again.json()['docs_written'] == 0, again.text

    # Push: the gateway is the target; per-doc refusals do not stop the rest.
    publish_test_manifest(couch, db('config'), ORG)
    outbox = f'{stack.services.config.db_prefix}outbox_{uuid.uuid4().hex[:6]}'
    local.ensure_db(outbox)
    new = [sealed_contact('w-gina', ORG) for _ in range(2)]
    foreign = sealed_contact('w-hal', ORG)[0]
    local.bulk_docs(outbox, [doc for pair in new for doc in pair] + [foreign])
    pushed = _replicate(couch_server.url, outbox, _gateway_url(stack, creds, 'records'))
    assert pushed.status_code == 200, pushed.text
    assert pushed.json()['docs_written'] == 4 and pushed.json()['doc_write_failures'] == 1
    stored = {row['id'] for row in couch.all_docs(db('records'))}
    assert {doc['_id'] for doc, _env in new} <= stored and foreign['_id'] not in stored
    assert {env['_id'] for _doc, env in new} <= {row['id'] for row in couch.all_docs(
        db('keyvault'))}
    assert not {env['_id'] for _doc, env in new} & stored
    quarantined = couch.all_docs(db('quarantine'), include_docs=True)
    assert [row['doc']['doc_id'] for row in quarantined] == [foreign['_id']]
    # Replaying the push writes nothing twice (records and envelopes).
    replay = _replicate(couch_server.url, outbox, _gateway_url(stack, creds, 'records'))
    assert replay.status_code == 200 and replay.json()['docs_written'] == 0, replay.text

    # Revoked: the replication is refused with 401 and nothing more lands.
    stack.devices.revoke(creds['device_id'])
    local.bulk_docs(outbox, [sealed_contact('w-gina', ORG)[0]])
    before = {row['id'] for row in couch.all_docs(db('records'))}
    try:
        refused = _replicate(couch_server.url, outbox, _gateway_url(stack, creds, 'records'))
        assert refused.status_code == 401, refused.text
    except httpx.TransportError:
        # pouchdb-server 4.2.0 crashes instead of answering (see the fixture);
        # its log shows the gateway's 401.
        log = (couch_server.data_dir / 'server.log').read_text()
        assert "status: 401" in log and "error: 'unauthorized'" in log
    assert {row['id'] for row in couch.all_docs(db('records'))} == before
