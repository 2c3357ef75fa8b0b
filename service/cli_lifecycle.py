"""Key lifecycle commands of the ``fieldvault`` CLI.

* ``keys rotate`` (admin's machine): new org key version v+1, grants to every
  certified person who holds v and to the recovery key, manifest seq+1 with
  v+1 active and v decrypt-only until ``--accept-until``.
* ``keys rewrap`` (a supervisor's machine): re-seal every envelope of v to v+1.
  Any supervisor holding both versions (by grant or share) can run it; it
  needs v's private key, which only their own grant or share gives back.
  Idempotent and resumable: the server's ``kek`` of each envelope is the
  only state, so a killed run is simply run again.
* ``keys census``: envelopes per key version.
* ``keys retire`` (admin): once v's census is zero and its ``accept_until``
  has passed, delete v's grants and mark v retired in a new manifest.
* ``advocate revoke NAME`` (admin): disable, delete their grants, rotate.

Every secret stays on the machine running the command; org private keys live
in memory only.
"""

from __future__ import annotations

import datetime as _dt
import json
import pathlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import click

import keys
from keys._encoding import DATE
from service.cli_staff import Api, Home, _load_signing_key, _pinned_signer
from sync.key_policy import accept_until_passed

__all__ = ['register', 'register_recovery', 'rotate', 'rewrap', 'RewrapStats']


def _home(ctx: click.Context) -> Home:
    return ctx.obj['home']


def _current_manifest(api: Api, pinned: str) -> dict[str, Any]:
    try:
        signed = api.call('GET', '/keys/manifest')['signed']
    except click.ClickException:
        raise click.ClickException('no key manifest is published: run `fieldvault keys init`') \
            from None
    try:
        return keys.verify_manifest(signed, pinned)
    except keys.errors.KeysError:
        raise click.ClickException('the server\'s key manifest does not verify against the '
                                   'pinned signing key: do not trust this server') from None


def _check_date(value: str) -> str:
    if not DATE.fullmatch(value):
        raise click.BadParameter('use YYYY-MM-DD', param_hint='--accept-until')
    try:
        _dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter('not a calendar date', param_hint='--accept-until') from None
    return value


def _census(api: Api) -> dict[str, int]:
    return api.call('GET', '/keys/census')['census']


def _show_census(label: str, counts: dict[str, int]) -> None:
    shown = ', '.join(f'{kid}={count}' for kid, count in counts.items()) or 'no envelopes'
    click.echo(f'census {label}: {shown}')


# -- recovery ----------------------------------------------------------------

def register_recovery(api: Api, signing_key: keys.SigningKey, public: dict[str, Any],
                      certified_by: str) -> None:
    """Certify the recovery key's public record and register it on the server."""
    certificate = keys.certify_advocate_key(public, signing_key, certified_by=certified_by)
    api.call('PUT', '/keys/recovery', {'certificate': certificate})


def _recovery_public(api: Api, signing_key: keys.SigningKey, me: str,
                     recovery_file: str | None) -> dict[str, Any]:
    pinned = signing_key.public_b64()
    if recovery_file is not None:
        public = json.loads(pathlib.Path(recovery_file).read_text())['public']
        register_recovery(api, signing_key, public, me)
        return public
    try:
        certificate = api.call('GET', '/keys/recovery')['certificate']
    except click.ClickException:
        raise click.ClickException('no recovery key is registered: pass --recovery FILE '
                                   '(the public record from `recovery create`)') from None
    try:
        body = keys.verify_certificate(certificate, pinned)
    except keys.errors.KeysError:
        raise click.ClickException('the recovery key certificate does not verify: do not '
                                   'trust this server') from None
    if body['advocate'] != keys.RECOVERY_ADVOCATE:
        raise click.ClickException('the registered recovery certificate is for another key')
    return {name: body[name] for name in ('advocate', 'apk', 'suite', 'pub', 'fingerprint')}


# -- rotate ------------------------------------------------------------------

def rotate(api: Api, signing_key: keys.SigningKey, new_kid: str, accept_until: str,
           recovery_file: str | None = None, echo: Callable[[str], None] = click.echo) -> int:
    """Rotate to ``new_kid``; return the new manifest ``seq``.

    Grants are stored before the manifest names the new key (never promote a
    key that nobody can open yet).
    """
    pinned = signing_key.public_b64()
    current = _current_manifest(api, pinned)
    if any(entry['kid'] == new_kid for entry in current['keys']):
        raise click.ClickException(f'the manifest already lists {new_kid}; choose a new kid')
    me = api.call('GET', '/auth/me')['username']
    disabled = {user['username'] for user in api.call('GET', '/users')['users']
                if user.get('disabled')}
    old = next(entry['kid'] for entry in current['keys'] if entry['status'] == 'active')
    # Only people who already hold the current version get the new one: a
    # newly certified person needs a holder's share (a second person).
    holders = {item['user'] for version in api.call('GET', '/keys/holders')['versions']
               if version['kid'] == old for item in version['holders']}
    recipients = []
    for entry in api.call('GET', '/advocates/certified')['keys']:
        # APPSEC: re-verify every certificate; the server could list a key of its own.
        try:
            body = keys.verify_certificate(entry['certificate'], pinned)
        except keys.errors.KeysError:
            raise click.ClickException('a certified key does not verify: do not trust this '
                                       'server') from None
        public = entry['public']
        if any(body[name] != public[name] for name in ('advocate', 'apk', 'pub')):
            raise click.ClickException('a listed key differs from its certificate')
        if public['advocate'] in disabled:
            continue  # a disabled (revoked) user gets no grant of the new key
        if public['advocate'] not in holders:
            continue
        recipients.append(public)
    recipients.append(_recovery_public(api, signing_key, me, recovery_file))
    try:
        org_key = keys.OrgKeyPair.generate(new_kid)
    except keys.errors.KeysError:
        raise click.ClickException(f'{new_kid!r} is not a valid key id') from None
    grants = [keys.seal_grant(org_key, public, org=current['org'], granted_by=me,
                              signing_key=signing_key) for public in recipients]
    api.call('POST', '/keys/grants', {'grants': grants})
    entries = [org_key.manifest_entry('active')]
    for entry in current['keys']:
        entry = dict(entry)
        if entry['status'] == 'active':
            entry['status'] = 'decrypt-only'
            entry['accept_until'] = accept_until
        entries.append(entry)
    seq = current['seq'] + 1
    body = keys.build_manifest(current['org'], seq, entries)
    api.call('PUT', '/keys/manifest', {'signed': keys.sign_manifest(body, signing_key)})
    echo(f'org key {new_kid} active in manifest seq {seq}; {old} decrypt-only, accepted until '
         f'{accept_until}; grants to {len(recipients) - 1} holders of {old} and recovery')
    if accept_until_passed(accept_until, time.time()):
        echo(f'warning: {accept_until} is already past: envelopes still sealed to {old} by '
             'offline tablets will be refused and quarantined')
    echo(f'next: a supervisor holding {old} runs `fieldvault keys rewrap --from {old} --to '
         f'{new_kid}`; certified staff without it get it by share (`fieldvault keys pending`)')
    return seq


# -- rewrap ------------------------------------------------------------------

class RewrapStats:
    """Counts of one rewrap run."""

    def __init__(self) -> None:
        self.rewrapped = 0
        self.conflicts = 0
        self.failed = 0
        self.already = 0

    def as_dict(self) -> dict[str, int]:
        return {'rewrapped': self.rewrapped, 'conflicts': self.conflicts,
                'failed': self.failed, 'already': self.already}


def _pages(api: Api, kek: str, page_size: int) -> Iterator[list[dict[str, Any]]]:
    after: str | None = None
    while True:
        params = {'kek': kek, 'limit': page_size}
        if after is not None:
            params['after'] = after
        page = api.call('GET', f'/keys/envelopes?{urlencode(params)}')
        if page['envelopes']:
            yield page['envelopes']
        after = page['next']
        if after is None:
            return


def rewrap(api: Api, keyring: keys.Keyring, *, old: str, new: str, new_public: str, org: str,
           page_size: int = 500, on_batch: Callable[[int], None] | None = None,
           max_passes: int = 3) -> RewrapStats:
    """Re-seal every envelope of ``old`` to ``new`` through the API.

    Pages are fetched ahead and written back behind the crypto (two threads),
    so network and sealing overlap; memory holds at most three pages. A pass
    that met conflicts (an envelope changed meanwhile) is followed by another
    pass, which only sees envelopes still sealed to ``old``.
    """
    stats = RewrapStats()

    def write(batch: list[dict[str, Any]]) -> tuple[int, int]:
        answer = api.call('POST', '/keys/envelopes/rewrapped',
                          {'from': old, 'to': new, 'envelopes': batch})
        return answer['written'], len(answer['conflicts']) + len(answer['refused'])

    with ThreadPoolExecutor(max_workers=2) as pool:
        for _pass in range(max_passes):
            conflicts_before = stats.conflicts
            pages = _pages(api, old, page_size)
            pending_page = pool.submit(next, pages, None)
            pending_write = None
            while True:
                page = pending_page.result()
                if page is None:
                    break
                pending_page = pool.submit(next, pages, None)
                batch = []
                for envelope in page:
                    try:
                        batch.append(keys.rewrap_envelope(
                            envelope, keyring=keyring, new_key_public_b64=new_public,
                            new_kid=new, org=org))
                    except keys.errors.KeysError:
                        stats.failed += 1
                if pending_write is not None:
                    _collect(pending_write, stats, on_batch)
                    pending_write = None
                if batch:
                    pending_write = pool.submit(write, batch)
            if pending_write is not None:
                _collect(pending_write, stats, on_batch)
            if stats.conflicts == conflicts_before:
                break
    return stats


def _collect(future, stats: RewrapStats, on_batch) -> None:
    written, conflicts = future.result()
    stats.rewrapped += written
    stats.conflicts += conflicts
    if on_batch is not None:
        on_batch(written + conflicts)


def _progress():
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text(f'{speed:,.0f} env/s' if speed else '- env/s')

    return Progress(TextColumn('rewrap'), BarColumn(), MofNCompleteColumn(), RateColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=False)


def _lacks(api: Api, me: str, kid: str) -> str:
    """Say which version the caller lacks, who holds it, and what to run."""
    versions = api.call('GET', '/keys/holders')['versions']
    holders = next(([item['user'] for item in version['holders']]
                    for version in versions if version['kid'] == kid), [])
    if holders:
        return (f'you hold no grant of {kid}; it is held by {", ".join(holders)}: ask one of '
                f'them to run `fieldvault keys share --to {me} --kid {kid}`')
    return (f'you hold no grant of {kid}, and no active staff holds it: the trustees run the '
            'recovery ceremony (`fieldvault recovery export`, see docs/OPERATIONS.md)')


# -- registration ------------------------------------------------------------

def register(cli: click.Group) -> None:
    """Add the lifecycle commands to the ``keys`` and ``advocate`` groups."""
    keys_group = cli.commands['keys']
    advocate_group = cli.commands['advocate']
    assert isinstance(keys_group, click.Group) and isinstance(advocate_group, click.Group)

    @keys_group.command('rotate')
    @click.option('--kid', required=True, help='Id of the new org key version, e.g. oek-2.')
    @click.option('--accept-until', required=True, callback=lambda c, p, v: _check_date(v),
                  help='Last UTC day (YYYY-MM-DD) envelopes sealed to the old key are accepted.')
    @click.option('--recovery', 'recovery_file', type=click.Path(exists=True, dir_okay=False),
                  help='Recovery public record; only needed if none is registered yet.')
    @click.pass_context
    def keys_rotate(ctx, kid: str, accept_until: str, recovery_file: str | None) -> None:
        """Rotate: new key version, grants to advocates and recovery, manifest seq+1."""
        home = _home(ctx)
        api = Api(home)
        signing_key = _load_signing_key(home)
        rotate(api, signing_key, kid, accept_until, recovery_file)

    @keys_group.command('census')
    @click.pass_context
    def keys_census(ctx) -> None:
        """Count envelopes per key version."""
        _show_census('now', _census(Api(_home(ctx))))

    @keys_group.command('rewrap')
    @click.option('--from', 'old', required=True, help='Key version to move envelopes off.')
    @click.option('--to', 'new', required=True, help='The active key version.')
    @click.option('--page-size', default=500, show_default=True, type=click.IntRange(1, 1000))
    @click.option('--no-progress', is_flag=True, help='No progress bar (logs, scripts).')
    @click.pass_context
    def keys_rewrap(ctx, old: str, new: str, page_size: int, no_progress: bool) -> None:
        """Re-seal every envelope of --from to --to (your machine; safe to re-run)."""
        home = _home(ctx)
        api = Api(home)
        pinned = _pinned_signer(home)
        manifest = _current_manifest(api, pinned)
        status = {entry['kid']: entry for entry in manifest['keys']}
        if status.get(new, {}).get('status') != 'active':
            raise click.ClickException(f'{new} is not the active key of the manifest')
        if old not in status or old == new:
            raise click.ClickException(f'the manifest does not list {old} as an older key')
        mine = api.call('GET', '/advocates/me')
        held = {grant.get('kek') for grant in mine['grants']}
        for kid in (old, new):
            if kid not in held:
                raise click.ClickException(_lacks(api, mine['public']['advocate'], kid))
        grants = [grant for grant in mine['grants'] if grant.get('kek') == old]
        passphrase = click.prompt('Key passphrase', hide_input=True)
        try:
            personal = keys.AdvocateKey.unwrap(mine['wrapped'], passphrase)
            keyring = keys.open_holdings(grants, personal, org=manifest['org'],
                                         pinned_public_b64=pinned, manifest_body=manifest)
        except keys.errors.KeysError:
            raise click.ClickException('your key or grant could not be opened') from None
        before = _census(api)
        _show_census('before', before)
        api.call('POST', '/keys/rewrap-runs', {'from': old, 'to': new, 'phase': 'started',
                                               'census': before})
        started = time.monotonic()
        if no_progress:
            stats = rewrap(api, keyring, old=old, new=new, new_public=status[new]['pub'],
                           org=manifest['org'], page_size=page_size)
        else:
            with _progress() as progress:
                task = progress.add_task('rewrap', total=before.get(old, 0) or None)
                stats = rewrap(api, keyring, old=old, new=new, new_public=status[new]['pub'],
                               org=manifest['org'], page_size=page_size,
                               on_batch=lambda n: progress.advance(task, n))
        elapsed = time.monotonic() - started
        after = _census(api)
        _show_census('after', after)
        api.call('POST', '/keys/rewrap-runs', {'from': old, 'to': new, 'phase': 'finished',
                                               'counts': stats.as_dict(), 'census': after})
        rate = stats.rewrapped / elapsed if elapsed > 0 else 0.0
        click.echo(f'rewrapped {stats.rewrapped} envelopes in {elapsed:.1f} s ({rate:,.0f}/s); '
                   f'conflicts {stats.conflicts}, unopenable {stats.failed}')
        if after.get(old, 0):
            click.echo(f'{after[old]} envelopes still sealed to {old}: run this command again '
                       '(new ones may arrive from offline tablets until accept_until); each '
                       "team's custodian rewraps their own team's envelopes")

    @keys_group.command('retire')
    @click.option('--kid', required=True, help='The old key version to retire.')
    @click.pass_context
    def keys_retire(ctx, kid: str) -> None:
        """Retire a key version: census zero and accept_until past; deletes its grants."""
        home = _home(ctx)
        api = Api(home)
        signing_key = _load_signing_key(home)
        current = _current_manifest(api, signing_key.public_b64())
        entry = next((item for item in current['keys'] if item['kid'] == kid), None)
        if entry is None:
            raise click.ClickException(f'the manifest does not list {kid}')
        if entry['status'] == 'active':
            raise click.ClickException(f'{kid} is the active key; rotate first')
        if entry['status'] == 'decrypt-only':
            until = entry.get('accept_until')
            if until is not None and not accept_until_passed(until, time.time()):
                raise click.ClickException(f'{kid} is accepted until {until}; retire after')
        counts = _census(api)
        _show_census('now', counts)
        if counts.get(kid, 0):
            raise click.ClickException(f'{counts[kid]} envelopes are still sealed to {kid}: '
                                       f'run `fieldvault keys rewrap --from {kid}` first')
        deleted = api.call('DELETE', f'/keys/grants/{kid}')['deleted']
        if entry['status'] != 'retired':
            entries = []
            for item in current['keys']:
                if item['kid'] == kid:
                    item = {'kid': kid, 'suite': item['suite'], 'status': 'retired'}
                entries.append(item)
            body = keys.build_manifest(current['org'], current['seq'] + 1, entries)
            api.call('PUT', '/keys/manifest', {'signed': keys.sign_manifest(body, signing_key)})
            click.echo(f'{kid} retired in manifest seq {current["seq"] + 1}; '
                       f'{deleted} grants deleted')
        else:
            click.echo(f'{kid} was already retired; {deleted} grants deleted')

    @advocate_group.command('revoke')
    @click.argument('name')
    @click.option('--kid', required=True, help='Id of the new org key version of the rotation.')
    @click.option('--accept-until', required=True, callback=lambda c, p, v: _check_date(v),
                  help='Last UTC day the old key is accepted (keep it short).')
    @click.option('--recovery', 'recovery_file', type=click.Path(exists=True, dir_okay=False))
    @click.option('--accept-recovery-only', is_flag=True,
                  help='Revoke even if a version with live envelopes is then held by no active '
                       'staff (only the recovery key opens it; audited).')
    @click.option('--yes', is_flag=True, help='Do not ask for confirmation.')
    @click.pass_context
    def advocate_revoke(ctx, name: str, kid: str, accept_until: str,
                        recovery_file: str | None, accept_recovery_only: bool, yes: bool) -> None:
        """Revoke an advocate (admin): disable, delete their grants, rotate.

        Refused while they are the last active holder of a version with live
        envelopes: a holder shares it first (`keys share`), unless
        --accept-recovery-only.
        """
        home = _home(ctx)
        api = Api(home)
        if not yes:
            click.confirm(f'Disable {name}, delete every grant they hold and rotate to {kid}?',
                          abort=True)
        signing_key = _load_signing_key(home)
        query = '?accept_recovery_only=true' if accept_recovery_only else ''
        api.call('PATCH', f'/users/{name}{query}', {'disabled': True})
        click.echo(f'{name} disabled; every session ended')
        deleted = api.call('DELETE', f'/advocates/keys/{name}/grants{query}')['deleted']
        click.echo(f'{deleted} grants of {name} deleted')
        rotate(api, signing_key, kid, accept_until, recovery_file)
