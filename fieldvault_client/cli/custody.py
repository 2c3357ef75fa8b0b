"""Key custody commands of the ``fieldvault`` CLI: who holds which version,
sharing a version with newly certified staff, and the recovery ceremony.

* ``keys holders`` (admin or supervisor): per key version, the envelopes,
  the active staff holding it, and whether only the recovery key remains.
* ``keys pending`` (a holder, or an admin): versions certified staff lack.
* ``keys share [--to USER] [--kid V]`` (a holder's own machine): opens the
  holder's grant locally, verifies each recipient's certificate against the
  pinned signer, seals a share to the certified key and uploads it.
* ``recovery export`` (online, an admin), ``recovery regrant`` (offline, the
  trustees with the recovery file), ``recovery upload`` (online, an admin):
  the break-glass ceremony when no active holder of a version remains.

Org private keys exist in memory only, on the machine that seals the share.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import click

import keys
from fieldvault_client.api import Api
from fieldvault_client.context import ClientContext, home_option, pass_client
from keys.shares import live_entry

__all__ = ['holder_keyring', 'show_holders', 'keys_holders', 'keys_pending', 'keys_share',
           'recovery_export', 'recovery_regrant', 'recovery_upload']

EXPORT_FORMAT = 'fieldvault-recovery-export/1'
SHARES_FORMAT = 'fieldvault-recovery-shares/1'


def _verified_manifest(api: Api, pinned: str) -> dict[str, Any]:
    try:
        signed = api.call('GET', '/keys/manifest')['signed']
    except click.ClickException:
        raise click.ClickException('no key manifest is published yet') from None
    try:
        return keys.verify_manifest(signed, pinned)
    except keys.errors.KeysError:
        raise click.ClickException('the server\'s key manifest does not verify against the '
                                   'pinned signing key: do not trust this server') from None


def holder_keyring(holdings: list[dict[str, Any]], personal: keys.AdvocateKey, *, org: str,
                   pinned: str, manifest_body: dict[str, Any]) -> keys.Keyring:
    """Open a person's grants and shares into a keyring (raises ``KeysError``)."""
    return keys.open_holdings(holdings, personal, org=org, pinned_public_b64=pinned,
                              manifest_body=manifest_body)


def _write_private(path: str, data: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write('\n')


def _checked_recipient(item: dict[str, Any], pinned: str) -> dict[str, Any]:
    """Verify a pending recipient's certificate; return their public record."""
    try:
        body = keys.verify_certificate(item['certificate'], pinned)
    except (keys.errors.KeysError, KeyError, TypeError):
        raise click.ClickException(
            f'the certificate of {item.get("to")} does not verify against the pinned signer: '
            'do not trust this server') from None
    public = item.get('public') or {}
    if any(body[name] != public.get(name) for name in ('advocate', 'apk', 'pub')) \
            or body['advocate'] != item.get('to') or body['advocate'] == keys.RECOVERY_ADVOCATE:
        raise click.ClickException(f'the key listed for {item.get("to")} is not the certified one')
    return {name: body[name] for name in ('advocate', 'apk', 'suite', 'pub', 'fingerprint')}


def show_holders(versions: list[dict[str, Any]]) -> None:
    """Print the holder census, one version per line."""
    if not versions:
        click.echo('no key versions')
    for entry in versions:
        holders = ', '.join(item['user'] for item in entry['holders']) or 'nobody'
        line = (f'{entry["kid"]} ({entry["status"]}): {entry["envelopes"]} envelopes; '
                f'held by {holders}; recovery key: {"yes" if entry["recovery"] else "no"}')
        if entry['recovery_only']:
            line += '; RECOVERY ONLY: run the recovery ceremony (docs/OPERATIONS.md)'
        click.echo(line)


@click.command('holders')
@home_option
@pass_client
def keys_holders(client: ClientContext) -> None:
    """Who holds each key version with live envelopes (admin or supervisor)."""
    show_holders(client.api.call('GET', '/keys/holders')['versions'])


@click.command('pending')
@home_option
@pass_client
def keys_pending(client: ClientContext) -> None:
    """Key versions certified staff still need (what you can share, or all for an admin)."""
    pending = client.api.call('GET', '/keys/pending')['pending']
    if not pending:
        click.echo('nothing pending')
    for item in pending:
        holders = ', '.join(item['holders']) or 'nobody (recovery ceremony)'
        click.echo(f'{item["to"]} needs {item["kek"]} (held by {holders})')


@click.command('share')
@click.option('--to', 'recipient', default=None, help='Only this person (default: all).')
@click.option('--kid', default=None, help='Only this key version (default: all you hold).')
@home_option
@pass_client
def keys_share(client: ClientContext, recipient: str | None, kid: str | None) -> None:
    """Share key versions you hold with certified staff who need them (your machine)."""
    api = client.api
    pinned = client.pinned_signer()
    manifest = _verified_manifest(api, pinned)
    me = api.call('GET', '/auth/me')['username']
    pending = [item for item in api.call('GET', '/keys/pending')['pending']
               if (recipient is None or item['to'] == recipient)
               and (kid is None or item['kek'] == kid)]
    if recipient == me:
        raise click.ClickException('nobody can share a key version with themselves; '
                                   'another holder shares it with you')
    if not pending:
        click.echo('nothing to share')
        return
    recipients = {item['to']: _checked_recipient(item, pinned) for item in pending}
    mine = api.call('GET', '/advocates/me')
    wanted = {item['kek'] for item in pending}
    holdings = [doc for doc in mine['grants'] if doc.get('kek') in wanted]
    passphrase = click.prompt('Key passphrase', hide_input=True)
    try:
        personal = keys.AdvocateKey.unwrap(mine['wrapped'], passphrase)
        keyring = holder_keyring(holdings, personal, org=manifest['org'], pinned=pinned,
                                 manifest_body=manifest)
    except keys.errors.KeysError:
        raise click.ClickException('your key or grants could not be opened') from None
    shares = []
    for item in pending:
        org_key = keyring.get(item['kek'])
        if org_key is None or live_entry(manifest, item['kek']) is None:
            raise click.ClickException(f'you hold no usable grant of {item["kek"]}')
        try:
            shares.append(keys.seal_share(org_key, recipients[item['to']],
                                          org=manifest['org'], shared_by=me,
                                          manifest_body=manifest))
        except keys.errors.KeysError:
            raise click.ClickException(
                f'your key of {item["kek"]} is not the one the manifest lists') from None
    answer = api.call('POST', '/keys/shares', {'shares': shares})
    for share in shares:
        click.echo(f'shared {share["kek"]} with {share["advocate"]} '
                   f'({recipients[share["advocate"]]["fingerprint"]})')
    click.echo(f'stored {answer["stored"]}; already held {len(answer["skipped"])}')


# -- the recovery ceremony ---------------------------------------------------

@click.command('export')
@home_option
@click.option('--out', required=True, type=click.Path(dir_okay=False),
              help='File to carry to the offline machine.')
@pass_client
def recovery_export(client: ClientContext, out: str) -> None:
    """Online step 1 (an admin): export what the offline recovery step needs."""
    exported = client.api.call('GET', '/keys/recovery/export')
    if not exported['versions']:
        click.echo('every live key version has an active holder: no recovery needed '
                   '(holders share with `fieldvault keys share`)')
        return
    _write_private(out, exported)
    missing = sorted(set(exported['versions'])
                     - {grant['kek'] for grant in exported['recovery_grants']})
    click.echo(f'versions with no active holder: {", ".join(exported["versions"])}; '
               f'{len(exported["pending"])} shares to make; written to {out}')
    if missing:
        click.echo(f'warning: the recovery key holds no grant of {", ".join(missing)}')
    click.echo('carry it to the offline machine; the trustees run `fieldvault recovery '
               'regrant` there')


@click.command('regrant')
@click.option('--in', 'exported_file', required=True, type=click.Path(exists=True,
              dir_okay=False), help='The file from `recovery export`.')
@click.option('--recovery', 'recovery_file', required=True,
              type=click.Path(exists=True, dir_okay=False),
              help='The recovery key file from `recovery create`.')
@click.option('--fingerprint', required=True,
              help='The org signer fingerprint, from the trustees\' own notes.')
@click.option('--out', required=True, type=click.Path(dir_okay=False),
              help='File of sealed shares to carry back online.')
@click.option('--to', 'only', multiple=True, help='Only these people (repeatable).')
def recovery_regrant(exported_file: str, recovery_file: str, fingerprint: str, out: str,
                     only: tuple[str, ...]) -> None:
    """Offline step (the trustees): re-grant versions to certified staff with the recovery key.

    Needs no network. Trusts nothing in the export until the signer matches
    the fingerprint given here; then verifies the manifest, every
    certificate and every recovery grant against that signer.
    """
    exported = json.loads(pathlib.Path(exported_file).read_text())
    if not isinstance(exported, dict) or exported.get('format') != EXPORT_FORMAT:
        raise click.ClickException('not a recovery export file')
    signer = exported.get('signer')
    try:
        matches = isinstance(signer, str) and (
            keys.fingerprint(signer).replace(' ', '') == fingerprint.replace(' ', ''))
    except (keys.errors.KeysError, TypeError):
        matches = False
    if not matches or not isinstance(signer, str):
        raise click.ClickException('the export\'s signer does not match your fingerprint: '
                                   'do not use this file')
    try:
        manifest = keys.verify_manifest(exported['manifest'], signer)
    except keys.errors.KeysError:
        raise click.ClickException('the export\'s manifest does not verify') from None
    if manifest['org'] != exported.get('org'):
        raise click.ClickException('the export\'s manifest is for another org')
    recovery = json.loads(pathlib.Path(recovery_file).read_text())
    passphrase = click.prompt('Recovery passphrase', hide_input=True)
    try:
        recovery_key = keys.AdvocateKey.unwrap(recovery['wrapped'], passphrase)
    except (keys.errors.KeysError, KeyError, TypeError):
        raise click.ClickException('the recovery key could not be unlocked') from None
    opened: dict[str, keys.OrgKeyPair] = {}
    org_key: keys.OrgKeyPair | None
    for grant in exported.get('recovery_grants', []):
        try:
            org_key = keys.open_grant(grant, recovery_key, org=manifest['org'],
                                      pinned_public_b64=signer)
        except keys.errors.KeysError:
            raise click.ClickException(
                f'the recovery grant of {grant.get("kek")} does not open') from None
        opened[org_key.kid] = org_key
    shares = []
    for item in exported.get('pending', []):
        if only and item.get('to') not in only:
            continue
        org_key = opened.get(item.get('kek'))
        if org_key is None:
            raise click.ClickException(f'the recovery key holds no grant of {item.get("kek")}')
        recipient = _checked_recipient(item, signer)
        try:
            shares.append(keys.seal_share(org_key, recipient, org=manifest['org'],
                                          shared_by=keys.RECOVERY_ADVOCATE,
                                          manifest_body=manifest, via='recovery'))
        except keys.errors.KeysError:
            raise click.ClickException(
                f'the recovery grant of {org_key.kid} is not the key the manifest '
                'lists') from None
        click.echo(f'sealed {org_key.kid} to {recipient["advocate"]} '
                   f'({recipient["fingerprint"]})')
    if not shares:
        raise click.ClickException('nothing to re-grant')
    _write_private(out, {'format': SHARES_FORMAT, 'org': manifest['org'],
                         'shares': shares})
    click.echo(f'{len(shares)} shares written to {out}; carry it back online, where an '
               'admin runs `fieldvault recovery upload`')


@click.command('upload')
@click.argument('shares_file', type=click.Path(exists=True, dir_okay=False))
@home_option
@pass_client
def recovery_upload(client: ClientContext, shares_file: str) -> None:
    """Online step 2 (an admin): upload the shares the offline step sealed."""
    data = json.loads(pathlib.Path(shares_file).read_text())
    if not isinstance(data, dict) or data.get('format') != SHARES_FORMAT:
        raise click.ClickException('not a recovery shares file')
    answer = client.api.call('POST', '/keys/shares', {'shares': data['shares']})
    click.echo(f'stored {answer["stored"]}; already held {len(answer["skipped"])}; '
               'the recipients check each share against the signed manifest when they '
               'open it')
