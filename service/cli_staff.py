"""Staff commands of the ``fieldvault`` CLI: they talk to the HTTP API and
keep every secret on the user's own machine.

Local state lives in ``--home`` (default ``~/.fieldvault``, mode 0700):
``session.json`` (server URL and bearer token), ``signer.json`` (the pinned
org signing public key), ``signing-key.pem`` (an admin's org signing key,
encrypted under their passphrase). Org private keys are never written: they
exist in memory only while a grant is being sealed or a record opened.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import click
import httpx

import keys
import schemas
from schemas.codes import RELEASE_PURPOSES

__all__ = ['register']


class Home:
    """The CLI's local folder."""

    def __init__(self, path: str) -> None:
        self.path = pathlib.Path(path).expanduser()

    def _file(self, name: str) -> pathlib.Path:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.path / name

    def read_json(self, name: str) -> dict[str, Any] | None:
        target = self._file(name)
        return json.loads(target.read_text()) if target.exists() else None

    def write(self, name: str, data: bytes | str) -> None:
        target = self._file(name)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data.encode() if isinstance(data, str) else data)

    def read_bytes(self, name: str) -> bytes | None:
        target = self._file(name)
        return target.read_bytes() if target.exists() else None


class Api:
    """A logged-in HTTP session against the service."""

    def __init__(self, home: Home) -> None:
        session = home.read_json('session.json')
        if not session:
            raise click.ClickException('not logged in: run `fieldvault login` first')
        self._http = httpx.Client(base_url=session['server'], timeout=60,
                                  headers={'Authorization': f'Bearer {session["token"]}'})

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self._http.request(method, path, json=body)
        if response.status_code == 401:
            raise click.ClickException(
                'your session has ended (a logout, a password or role change, or a disabled '
                'account): run `fieldvault login` again')
        if response.status_code >= 400:
            try:
                error = response.json()
                detail = f'{error.get("code")}: {error.get("description")}'
                if error.get('fields'):
                    detail += f' {json.dumps(error["fields"])}'
            except ValueError:
                detail = response.reason_phrase
            raise click.ClickException(f'{method} {path} -> {response.status_code} {detail}')
        return response.json()


def _default_server() -> str:
    """The service ``make run`` starts on this machine, where the settings put it."""
    host = os.environ.get('FIELDVAULT_BIND_HOST') or '127.0.0.1'
    if host in ('0.0.0.0', '::'):  # listening everywhere: reach it on loopback
        host = '127.0.0.1'
    return f'http://{host}:{os.environ.get("FIELDVAULT_BIND_PORT") or 8080}'


def _login_refusal(response: httpx.Response, server: str) -> str:
    """Say why a login failed in words an operator can act on."""
    try:
        code = response.json().get('code')
    except (ValueError, AttributeError):
        code = None
    if response.status_code == 401:
        return 'login refused: wrong username or password'
    if response.status_code == 429:
        wait = response.headers.get('Retry-After', 'a few')
        return (f'login refused: too many failed attempts for this name; try again in {wait} '
                'seconds, or ask an admin')
    if response.status_code == 404 or code is None:
        return (f'{server} did not answer as a fieldvault service (is it the database\'s port? '
                'the service listens on FIELDVAULT_BIND_PORT, 8080 by default)')
    return f'login refused ({response.status_code} {code})'


def _home(ctx: click.Context) -> Home:
    return ctx.obj['home']


def _pinned_signer(home: Home) -> str:
    pinned = home.read_json('signer.json')
    if not pinned:
        raise click.ClickException(
            'no org signing key is pinned: run `fieldvault pin --fingerprint FP` with the '
            'fingerprint your admin gave you in person')
    return pinned['public']


def _manifest_body(api: Api, pinned: str) -> dict[str, Any]:
    """Return the server's manifest body, verified against the pinned signer.

    Shares (keys a holder passed on) are accepted only when they match it.

    Raises:
        keys.errors.KeysError: It does not verify.
    """
    return keys.verify_manifest(api.call('GET', '/keys/manifest')['signed'], pinned)


def _load_signing_key(home: Home) -> keys.SigningKey:
    data = home.read_bytes('signing-key.pem')
    if data is None:
        raise click.ClickException('no org signing key here: run `fieldvault admin init-signer`')
    passphrase = click.prompt('Signing key passphrase', hide_input=True)
    try:
        return keys.SigningKey.from_pem(data, passphrase)
    except keys.errors.KeysError:
        raise click.ClickException('the signing key could not be unlocked') from None


def _verified_manifest(api: Api, pinned: str) -> dict[str, Any]:
    """Return the server's manifest body, verified against the pinned signer."""
    try:
        signed = api.call('GET', '/keys/manifest')['signed']
        return keys.verify_manifest(signed, pinned)
    except (click.ClickException, keys.errors.KeysError, KeyError, TypeError):
        raise click.ClickException('the key manifest could not be fetched or does not verify '
                                   'against the pinned signing key: do not trust this '
                                   'server') from None


def _manifest_exists(api: Api) -> bool:
    try:
        api.call('GET', '/keys/manifest')
    except click.ClickException as ex:
        if ' -> 404 ' in ex.message:
            return False
        raise
    return True


def _unlock(mine: dict[str, Any], passphrase: str) -> keys.AdvocateKey:
    try:
        return keys.AdvocateKey.unwrap(mine['wrapped'], passphrase)
    except keys.errors.KeysError:
        raise click.ClickException('wrong passphrase: your personal key could not be '
                                   'unlocked') from None


class _Opener:
    """Opens released records on this machine, one keyring per org.

    Only grants and shares of key versions the verified manifest lists are
    used (a stray one of any other version is ignored), and only those of
    the versions a record needs. A failure is reported to the server as a code
    (``record_open_failed`` in the audit log), never a value, and named
    here: no grant of a version, a grant that does not open, or a record
    that does not open.
    """

    def __init__(self, api: Api, mine: dict[str, Any], personal: keys.AdvocateKey,
                 manifest: dict[str, Any], pinned: str) -> None:
        self._api = api
        self._personal = personal
        self._pinned = pinned
        self._manifest = manifest
        listed = {entry['kid'] for entry in manifest['keys']}
        self._grants = {grant.get('kek'): grant for grant in mine['grants']
                        if grant.get('kek') in listed}
        self._opened: dict[tuple[str, str], Any] = {}

    def _fail(self, record_id: str, code: str, message: str) -> Exception:
        try:
            self._api.call('POST', f'/records/{record_id}/open-failures', {'code': code})
        except click.ClickException:
            pass  # the local answer matters more than the report
        return click.ClickException(message)

    def open(self, record_id: str, released: dict[str, Any]) -> dict[str, Any]:
        document = released['document']
        org = document['org']
        needed = sorted({envelope.get('kek') for envelope in released['envelopes']})
        missing = [kid for kid in needed if kid not in self._grants]
        if missing:
            raise self._fail(record_id, 'no_grant',
                             f'you hold no grant of {", ".join(missing)} (the key version this '
                             f'record is sealed to): ask a custodian who holds it to share it')
        org_keys = []
        for kid in needed:
            if (org, kid) not in self._opened:
                holding = self._grants[kid]
                try:
                    # A custodian's share carries no admin signature: it opens
                    # only to the private key of the manifest's listed pub.
                    if holding.get('type') == 'share':
                        self._opened[(org, kid)] = keys.open_share(
                            holding, self._personal, org=org, manifest_body=self._manifest)
                    else:
                        self._opened[(org, kid)] = keys.open_grant(
                            holding, self._personal, org=org, pinned_public_b64=self._pinned)
                except keys.errors.KeysError:
                    raise self._fail(record_id, 'grant_unopenable',
                                     f'your grant of {kid} could not be opened: ask an admin '
                                     'to remove it and a custodian to share the version '
                                     'again') from None
            org_keys.append(self._opened[(org, kid)])
        try:
            if not org_keys:
                raise keys.InvalidCiphertext  # no envelope released: nothing opens it
            return keys.open_document(
                document, envelopes=released['envelopes'], keyring=keys.Keyring(org_keys),
                paths=schemas.identifying_paths(document['type']), org=org)
        except keys.errors.KeysError:
            raise self._fail(record_id, 'record_unopenable',
                             f'record {record_id} could not be opened with your keys') from None


def register(cli: click.Group) -> None:
    """Add the staff commands to the root group."""

    @cli.command()
    @click.option('--server', default=_default_server, show_default='this machine, on '
                  'FIELDVAULT_BIND_HOST and FIELDVAULT_BIND_PORT (127.0.0.1:8080)')
    @click.option('--username', required=True)
    @click.option('--home', default='~/.fieldvault', show_default=True)
    @click.password_option(confirmation_prompt=False)
    def login(server: str, username: str, home: str, password: str) -> None:
        """Log in and keep the session token in --home."""
        response = httpx.post(f'{server.rstrip("/")}/auth/login',
                              json={'username': username, 'password': password}, timeout=30)
        if response.status_code != 200:
            raise click.ClickException(_login_refusal(response, server))
        Home(home).write('session.json', json.dumps(
            {'server': server.rstrip('/'), 'token': response.json()['token']}))
        click.echo(f'logged in as {username}')

    @cli.command()
    @click.option('--fingerprint', required=True, help='Fingerprint read out by your admin.')
    @click.option('--home', default='~/.fieldvault', show_default=True)
    def pin(fingerprint: str, home: str) -> None:
        """Pin the org signing key after checking its fingerprint."""
        local = Home(home)
        signer = Api(local).call('GET', '/keys/signer')
        if keys.fingerprint(signer['public']).replace(' ', '') != fingerprint.replace(' ', ''):
            raise click.ClickException('fingerprint mismatch: do not trust this server')
        local.write('signer.json', json.dumps({'public': signer['public']}))
        click.echo('org signing key pinned')

    @cli.group()
    @click.option('--home', default='~/.fieldvault', show_default=True)
    @click.pass_context
    def admin(ctx: click.Context, home: str) -> None:
        """Admin key ceremonies (run on the admin's own machine)."""
        ctx.obj = {'home': Home(home)}

    @admin.command('init-signer')
    @click.pass_context
    def init_signer(ctx: click.Context) -> None:
        """Generate the org signing key, keep it here encrypted, pin it on the server."""
        home = _home(ctx)
        if home.read_bytes('signing-key.pem') is not None:
            raise click.ClickException('a signing key already exists in this home')
        passphrase = click.prompt('New signing key passphrase', hide_input=True,
                                  confirmation_prompt=True)
        signing_key = keys.SigningKey.generate()
        home.write('signing-key.pem', signing_key.to_pem(passphrase))
        Api(home).call('PUT', '/keys/signer', {'public': signing_key.public_b64()})
        home.write('signer.json', json.dumps({'public': signing_key.public_b64()}))
        click.echo(f'org signing key fingerprint: {signing_key.fingerprint()}')
        click.echo('read it out to every advocate, who runs `fieldvault pin --fingerprint ...`')

    @admin.command('certify')
    @click.argument('advocate')
    @click.option('--fingerprint', required=True,
                  help='The fingerprint the advocate read to you from their screen.')
    @click.pass_context
    def certify(ctx: click.Context, advocate: str, fingerprint: str) -> None:
        """Certify an advocate's enrolled key after an out-of-band fingerprint check."""
        home = _home(ctx)
        api = Api(home)
        enrolled = api.call('GET', f'/advocates/keys/{advocate}')['public']
        shown = keys.fingerprint(enrolled['pub'])
        if shown.replace(' ', '') != fingerprint.replace(' ', ''):
            # APPSEC: never show the server's fingerprint: an operator would
            # be tempted to copy it, and it may be the server's own key.
            raise click.ClickException(
                'fingerprint mismatch: the key the server holds does not match the one the '
                'advocate read to you; do not trust this server and do not certify')
        signing_key = _load_signing_key(home)
        me = api.call('GET', '/auth/me')['username']
        certificate = keys.certify_advocate_key(enrolled, signing_key, certified_by=me)
        answer = api.call('PUT', f'/advocates/keys/{advocate}/certificate',
                          {'certificate': certificate})
        click.echo(f'certified {advocate} ({shown})')
        if answer.get('needs'):
            click.echo(f'{advocate} needs {", ".join(answer["needs"])}: a holder runs '
                       f'`fieldvault keys share --to {advocate}` on their own machine')

    @cli.group('keys')
    @click.option('--home', default='~/.fieldvault', show_default=True)
    @click.pass_context
    def keys_group(ctx: click.Context, home: str) -> None:
        """Org key versions (run on the admin's own machine)."""
        ctx.obj = {'home': Home(home)}

    @keys_group.command('init')
    @click.option('--kid', required=True, help='Id of the first org key version, e.g. oek-1.')
    @click.option('--org', required=True, help='Organisation id (FIELDVAULT_ORG).')
    @click.option('--recovery', 'recovery_file', required=True, type=click.Path(exists=True),
                  help='Public record of the break-glass recovery key (from `recovery create`).')
    @click.pass_context
    def keys_init(ctx: click.Context, kid: str, org: str, recovery_file: str) -> None:
        """Create the first org key: grants to every certified advocate and recovery, manifest."""
        home = _home(ctx)
        api = Api(home)
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
        signing_key = _load_signing_key(home)
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
        from service.cli_lifecycle import register_recovery
        register_recovery(api, signing_key, recovery, me)
        try:
            current = api.call('GET', '/keys/manifest')
            seq = keys.verify_manifest(current['signed'], pinned)['seq'] + 1
        except click.ClickException:
            seq = 1
        body = keys.build_manifest(org, seq, [org_key.manifest_entry('active')])
        api.call('PUT', '/keys/manifest', {'signed': keys.sign_manifest(body, signing_key)})
        click.echo(f'org key {kid} active in manifest seq {seq}; '
                   f'grants to {len(recipients) - 1} advocates and recovery')

    @keys_group.command('remove-grant')
    @click.option('--kid', required=True, help='The key version of the grant.')
    @click.option('--advocate', required=True, help='The person the grant was sealed to.')
    @click.option('--yes', is_flag=True, help='Do not ask for confirmation.')
    @click.pass_context
    def keys_remove_grant(ctx: click.Context, kid: str, advocate: str, yes: bool) -> None:
        """Remove one grant (admin; audited), e.g. a stray grant that stops a keyring loading."""
        api = Api(_home(ctx))
        if not yes:
            click.confirm(f'Remove the grant of {kid} to {advocate}?', abort=True)
        api.call('DELETE', f'/keys/grants/{kid}/{advocate}')
        click.echo(f'grant of {kid} to {advocate} removed')

    @cli.group()
    def recovery() -> None:
        """The break-glass recovery key (kept offline by trustees)."""

    @recovery.command('create')
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

    @cli.group()
    @click.option('--home', default='~/.fieldvault', show_default=True)
    @click.pass_context
    def advocate(ctx: click.Context, home: str) -> None:
        """An advocate's key and record access (on the advocate's own machine)."""
        ctx.obj = {'home': Home(home)}

    @advocate.command('enroll')
    @click.pass_context
    def advocate_enroll(ctx: click.Context) -> None:
        """Generate your personal key, wrap it under a passphrase, and upload it."""
        api = Api(_home(ctx))
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

    @advocate.command('open')
    @click.argument('record_id')
    @click.option('--purpose', required=True, type=click.Choice(RELEASE_PURPOSES),
                  help='Why you open this record (audited; a code, never free text).')
    @click.pass_context
    def advocate_open(ctx: click.Context, record_id: str, purpose: str) -> None:
        """Open a record locally: asks for your passphrase and shows the plaintext."""
        home = _home(ctx)
        api = Api(home)
        pinned = _pinned_signer(home)
        mine = api.call('GET', '/advocates/me')
        manifest = _verified_manifest(api, pinned)
        passphrase = click.prompt('Key passphrase', hide_input=True)
        personal = _unlock(mine, passphrase)
        released = api.call('POST', f'/records/{record_id}/open', {'purpose': purpose})
        plain = _Opener(api, mine, personal, manifest, pinned).open(record_id, released)
        click.echo(json.dumps(plain, indent=2, ensure_ascii=False, sort_keys=True))

    @advocate.command('open-many')
    @click.argument('record_ids', nargs=-1)
    @click.option('--ids-file', type=click.Path(exists=True, dir_okay=False),
                  help='A file with one record id per line (added to RECORD_IDS).')
    @click.option('--purpose', required=True, type=click.Choice(RELEASE_PURPOSES),
                  help='Why you open these records (audited; a code, never free text).')
    @click.pass_context
    def advocate_open_many(ctx: click.Context, record_ids: tuple[str, ...], ids_file: str | None,
                           purpose: str) -> None:
        """Open many records, unlocking your key once; prints one JSON line per record.

        Each record is released (and audited) separately, with the same purpose.
        """
        home = _home(ctx)
        api = Api(home)
        pinned = _pinned_signer(home)
        ids = list(record_ids)
        if ids_file:
            ids += [line.strip() for line in pathlib.Path(ids_file).read_text().splitlines()
                    if line.strip()]
        mine = api.call('GET', '/advocates/me')
        manifest = _verified_manifest(api, pinned)
        passphrase = click.prompt('Key passphrase', hide_input=True)
        opener = _Opener(api, mine, _unlock(mine, passphrase), manifest, pinned)
        for record_id in ids:
            released = api.call('POST', f'/records/{record_id}/open', {'purpose': purpose})
            plain = opener.open(record_id, released)
            click.echo(json.dumps(plain, ensure_ascii=False, sort_keys=True))

    @cli.group()
    @click.option('--home', default='~/.fieldvault', show_default=True)
    @click.pass_context
    def intake(ctx: click.Context, home: str) -> None:
        """Desk intake without a tablet."""
        ctx.obj = {'home': Home(home)}

    @intake.command('submit')
    @click.argument('path', type=click.Path(exists=True, dir_okay=False))
    @click.pass_context
    def intake_submit(ctx: click.Context, path: str) -> None:
        """Validate a record from a JSON file, seal it here, and submit it."""
        home = _home(ctx)
        api = Api(home)
        pinned = _pinned_signer(home)
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
