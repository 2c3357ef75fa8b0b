"""Staff commands of the ``fieldvault`` CLI: logging in, pinning the org signer,
the admin's key ceremonies, an advocate's key and record access, desk intake.

They talk to the HTTP API and keep every secret on the user's own machine,
in the home folder (``fieldvault_client.home``).
"""

from __future__ import annotations

import json
import os
import pathlib

import click

import keys
import schemas
from fieldvault_client.api import default_server, log_in
from fieldvault_client.context import ClientContext, home_option, pass_client
from fieldvault_client.cli.lifecycle import register_recovery
from fieldvault_client.opener import RecordOpener, unlock_personal_key, verified_manifest
from schemas.codes import RELEASE_PURPOSES

__all__ = ['login', 'pin', 'init_signer', 'certify', 'keys_init', 'keys_remove_grant',
           'recovery_create', 'advocate_enroll', 'advocate_open', 'advocate_open_many',
           'intake_submit']


def _manifest_exists(api) -> bool:
    try:
        api.call('GET', '/keys/manifest')
    except click.ClickException as ex:
        if ' -> 404 ' in ex.message:
            return False
        raise
    return True


@click.command()
@click.option('--server', default=default_server, show_default='this machine, on '
              'FIELDVAULT_BIND_HOST and FIELDVAULT_BIND_PORT (127.0.0.1:8080)')
@click.option('--username', required=True)
@home_option
@click.password_option(confirmation_prompt=False)
@pass_client
def login(client: ClientContext, server: str, username: str, password: str) -> None:
    """Log in and keep the session token in --home."""
    log_in(client.home, server, username, password)
    click.echo(f'logged in as {username}')


@click.command()
@click.option('--fingerprint', required=True, help='Fingerprint read out by your admin.')
@home_option
@pass_client
def pin(client: ClientContext, fingerprint: str) -> None:
    """Pin the org signing key after checking its fingerprint."""
    signer = client.api.call('GET', '/keys/signer')
    if keys.fingerprint(signer['public']).replace(' ', '') != fingerprint.replace(' ', ''):
        raise click.ClickException('fingerprint mismatch: do not trust this server')
    client.home.write('signer.json', json.dumps({'public': signer['public']}))
    click.echo('org signing key pinned')


# -- admin ---------------------------------------------------------------------

@click.command('init-signer')
@home_option
@pass_client
def init_signer(client: ClientContext) -> None:
    """Generate the org signing key, keep it here encrypted, pin it on the server."""
    home = client.home
    if home.read_bytes('signing-key.pem') is not None:
        raise click.ClickException('a signing key already exists in this home')
    passphrase = click.prompt('New signing key passphrase', hide_input=True,
                              confirmation_prompt=True)
    signing_key = keys.SigningKey.generate()
    home.write('signing-key.pem', signing_key.to_pem(passphrase))
    client.api.call('PUT', '/keys/signer', {'public': signing_key.public_b64()})
    home.write('signer.json', json.dumps({'public': signing_key.public_b64()}))
    click.echo(f'org signing key fingerprint: {signing_key.fingerprint()}')
    click.echo('read it out to every advocate, who runs `fieldvault pin --fingerprint ...`')


@click.command('certify')
@click.argument('advocate')
@click.option('--fingerprint', required=True,
              help='The fingerprint the advocate read to you from their screen.')
@home_option
@pass_client
def certify(client: ClientContext, advocate: str, fingerprint: str) -> None:
    """Certify an advocate's enrolled key after an out-of-band fingerprint check."""
    api = client.api
    enrolled = api.call('GET', f'/advocates/keys/{advocate}')['public']
    shown = keys.fingerprint(enrolled['pub'])
    if shown.replace(' ', '') != fingerprint.replace(' ', ''):
        # APPSEC: never show the server's fingerprint: an operator would
        # be tempted to copy it, and it may be the server's own key.
        raise click.ClickException(
            'fingerprint mismatch: the key the server holds does not match the one the '
            'advocate read to you; do not trust this server and do not certify')
    signing_key = client.signing_key()
    me = api.call('GET', '/auth/me')['username']
    certificate = keys.certify_advocate_key(enrolled, signing_key, certified_by=me)
    answer = api.call('PUT', f'/advocates/keys/{advocate}/certificate',
                      {'certificate': certificate})
    click.echo(f'certified {advocate} ({shown})')
    if answer.get('needs'):
        click.echo(f'{advocate} needs {", ".join(answer["needs"])}: a holder runs '
                   f'`fieldvault keys share --to {advocate}` on their own machine')


# -- keys ----------------------------------------------------------------------

@click.command('init')
@click.option('--kid', required=True, help='Id of the first org key version, e.g. oek-1.')
@click.option('--org', required=True, help='Organisation id (FIELDVAULT_ORG).')
@click.option('--recovery', 'recovery_file', required=True, type=click.Path(exists=True),
              help='Public record of the break-glass recovery key (from `recovery create`).')
@home_option
@pass_client
def keys_init(client: ClientContext, kid: str, org: str, recovery_file: str) -> None:
    """Create the first org key: grants to every certified advocate and recovery, manifest."""
    api = client.api
    # A first key only: a second `init` would replace the manifest (and
    # with it every key version already sealing records).
    if _manifest_exists(api):
        raise click.ClickException('a key manifest is already published: `keys init` '
                                   'makes the first key only; use `fieldvault keys rotate '
                                   '--kid NEW --accept-until YYYY-MM-DD` for a new version')
    service_org = api.call('GET', '/keys/signer').get('org')
    if org != service_org:
        raise click.ClickException(f'--org {org} is not this service\'s org '
                                   f'({service_org}, FIELDVAULT_ORG)')
    signing_key = client.signing_key()
    pinned = signing_key.public_b64()
    recipients = []
    for entry in api.call('GET', '/advocates/certified')['keys']:
        # APPSEC: re-verify each certificate here; the server could list
        # a key of its own.
        keys.verify_certificate(entry['certificate'], pinned)
        recipients.append(entry['public'])
    recovery = json.loads(pathlib.Path(recovery_file).read_text())['public']
    recipients.append(recovery)
    org_key = keys.OrgKeyPair.generate(kid)
    me = api.call('GET', '/auth/me')['username']
    grants = [keys.seal_grant(org_key, public, org=org, granted_by=me,
                              signing_key=signing_key) for public in recipients]
    api.call('POST', '/keys/grants', {'grants': grants})
    # Registered (certified by the signing key) so `keys rotate` finds it again.
    register_recovery(api, signing_key, recovery, me)
    # The first manifest (none was published, checked above): seq 1.
    body = keys.build_manifest(org, 1, [org_key.manifest_entry('active')])
    api.call('PUT', '/keys/manifest', {'signed': keys.sign_manifest(body, signing_key)})
    click.echo(f'org key {kid} active in manifest seq 1; '
               f'grants to {len(recipients) - 1} advocates and recovery')


@click.command('remove-grant')
@click.option('--kid', required=True, help='The key version of the grant.')
@click.option('--advocate', required=True, help='The person the grant was sealed to.')
@click.option('--yes', is_flag=True, help='Do not ask for confirmation.')
@home_option
@pass_client
def keys_remove_grant(client: ClientContext, kid: str, advocate: str, yes: bool) -> None:
    """Remove one grant (admin; audited), e.g. a stray grant that stops a keyring loading."""
    api = client.api
    if not yes:
        click.confirm(f'Remove the grant of {kid} to {advocate}?', abort=True)
    api.call('DELETE', f'/keys/grants/{kid}/{advocate}')
    click.echo(f'grant of {kid} to {advocate} removed')


# -- recovery --------------------------------------------------------------------

@click.command('create')
@click.option('--out', required=True, type=click.Path(dir_okay=False))
def recovery_create(out: str) -> None:
    """Generate the recovery key, wrapped under a passphrase, into --out."""
    passphrase = click.prompt('Recovery passphrase', hide_input=True, confirmation_prompt=True)
    recovery_key = keys.AdvocateKey.generate('recovery')
    blob = {'public': recovery_key.public_record(), 'wrapped': recovery_key.wrap(passphrase)}
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump(blob, handle, indent=2)
    click.echo(f'recovery key {recovery_key.public_record()["fingerprint"]} written to {out}')


# -- advocate --------------------------------------------------------------------

@click.command('enroll')
@home_option
@pass_client
def advocate_enroll(client: ClientContext) -> None:
    """Generate your personal key, wrap it under a passphrase, and upload it."""
    api = client.api
    me = api.call('GET', '/auth/me')['username']
    passphrase = click.prompt('New key passphrase (12+ characters)', hide_input=True,
                              confirmation_prompt=True)
    personal = keys.AdvocateKey.generate(me)
    try:
        wrapped = personal.wrap(passphrase)
    except keys.errors.WeakPassphrase:
        raise click.ClickException('the passphrase is too short') from None
    result = api.call('POST', '/advocates/keys',
                      {'public': personal.public_record(), 'wrapped': wrapped})
    click.echo(f'key enrolled; read this fingerprint to your admin: {result["fingerprint"]}')


@click.command('open')
@click.argument('record_id')
@click.option('--purpose', required=True, type=click.Choice(RELEASE_PURPOSES),
              help='Why you open this record (audited; a code, never free text).')
@home_option
@pass_client
def advocate_open(client: ClientContext, record_id: str, purpose: str) -> None:
    """Open a record locally: asks for your passphrase and shows the plaintext."""
    api = client.api
    pinned = client.pinned_signer()
    mine = api.call('GET', '/advocates/me')
    manifest = verified_manifest(api, pinned)
    passphrase = click.prompt('Key passphrase', hide_input=True)
    personal = unlock_personal_key(mine, passphrase)
    released = api.call('POST', f'/records/{record_id}/open', {'purpose': purpose})
    plain = RecordOpener(api, mine, personal, manifest, pinned).open(record_id, released)
    click.echo(json.dumps(plain, indent=2, ensure_ascii=False, sort_keys=True))


@click.command('open-many')
@click.argument('record_ids', nargs=-1)
@click.option('--ids-file', type=click.Path(exists=True, dir_okay=False),
              help='A file with one record id per line (added to RECORD_IDS).')
@click.option('--purpose', required=True, type=click.Choice(RELEASE_PURPOSES),
              help='Why you open these records (audited; a code, never free text).')
@home_option
@pass_client
def advocate_open_many(client: ClientContext, record_ids: tuple[str, ...],
                       ids_file: str | None, purpose: str) -> None:
    """Open many records, unlocking your key once; prints one JSON line per record.

    Each record is released (and audited) separately, with the same purpose.
    """
    api = client.api
    pinned = client.pinned_signer()
    ids = list(record_ids)
    if ids_file:
        ids += [line.strip() for line in pathlib.Path(ids_file).read_text().splitlines()
                if line.strip()]
    mine = api.call('GET', '/advocates/me')
    manifest = verified_manifest(api, pinned)
    passphrase = click.prompt('Key passphrase', hide_input=True)
    opener = RecordOpener(api, mine, unlock_personal_key(mine, passphrase), manifest, pinned)
    for record_id in ids:
        released = api.call('POST', f'/records/{record_id}/open', {'purpose': purpose})
        plain = opener.open(record_id, released)
        click.echo(json.dumps(plain, ensure_ascii=False, sort_keys=True))


# -- intake ----------------------------------------------------------------------

@click.command('submit')
@click.argument('path', type=click.Path(exists=True, dir_okay=False))
@home_option
@pass_client
def intake_submit(client: ClientContext, path: str) -> None:
    """Validate a record from a JSON file, seal it here, and submit it."""
    api = client.api
    pinned = client.pinned_signer()
    document = json.loads(pathlib.Path(path).read_text(encoding='utf-8'))
    try:
        document = schemas.validate_document(document, sealed=False)
    except schemas.errors.SchemaValidationError as ex:
        raise click.ClickException(f'invalid record: {json.dumps(ex.messages)}') from None
    manifest = keys.verify_manifest(api.call('GET', '/keys/manifest')['signed'], pinned)
    sealed, envelope = keys.seal_document(
        document, paths=schemas.identifying_paths(document['type']),
        org=document['org'], manifest_body=manifest)
    result = api.call('POST', '/records', {'document': sealed, 'envelopes': [envelope]})
    click.echo(f'submitted {result["id"]}')
