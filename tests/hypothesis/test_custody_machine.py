"""Key custody as a state machine: staff come and go, keys rotate, youth are
sealed, attackers try the known seams; after every step the records are
actually opened with the keys each person holds.

Each example is a fresh deployment (real pouchdb-server, ``create_app``
served on loopback, the real CLI in every person's own home, real HPKE and
Argon2id). Steps the service refuses are legitimate outcomes: the machine
notes the refusal and goes on. After every step it checks:

1. every live record of an unsealed youth opens for at least one active
   custodian (advocate or supervisor, enabled, key not revoked, never an
   admin) with the grants and shares their CLI loads, without the recovery
   key; exempt only while every envelope of it is sealed to a version the
   admin explicitly accepted to leave to the recovery key alone (409
   ``recovery_only``, then ``accept_recovery_only``), until a recovery
   ceremony re-grants that version;
2. no record of a sealed youth (any revision ever stored) opens with any org
   key that exists anywhere (every grant ever stored or backed up, opened by
   its holder, the recovery key, keys an attacker made) and any envelope the
   deployment still holds: the key vault, quarantine, and key-vault backups
   taken after the sealing;
3. a revoked advocate opens nothing sealed to a key version that appeared
   after the revocation, whatever grant addressed to them was ever stored
   (tried on every stored record and on a record sealed here to each such
   version, as any tablet may seal one at any time);
4. no account that has held the admin role opens any record (stored, or
   sealed here to any version), and every completed sealing was proposed and
   approved by two distinct people who both existed before the proposal,
   neither created nor changed by the other.

Knobs (environment): ``CUSTODY_MACHINE_EXAMPLES`` (default 10) and
``CUSTODY_MACHINE_STEPS`` (default 20) size the run, and
``CUSTODY_MACHINE_VERBOSE=1`` prints every example's steps and outcomes,
``CUSTODY_MACHINE_SHRINK=0`` reports a failure unshrunk (shrinking one
takes minutes);
``CUSTODY_MACHINE_INVARIANTS`` (e.g. ``1,3``) checks only those invariants;
``CUSTODY_MACHINE_RULES_OFF`` (comma-separated rule names, the methods
below) leaves operations out, so a failure of one invariant does not hide
what the others catch. To see an invariant catch its rule, break the rule in
the product and run only that invariant, e.g.
``CUSTODY_MACHINE_INVARIANTS=3 pytest tests/hypothesis/test_custody_machine.py``.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
from hypothesis import HealthCheck, Phase, Verbosity, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import keys
import schemas
from tests.support.custody import (
    ADMIN,
    KEY_PASS,
    RECOVERY_PASS,
    SIGNER_PASS,
    TEAM,
    WORKER,
    Deployment,
    KeyOracle,
    day,
    keyrings,
    opens,
)

pytestmark = pytest.mark.functional

SETTINGS = settings(
    max_examples=int(os.environ.get('CUSTODY_MACHINE_EXAMPLES', '10')),
    stateful_step_count=int(os.environ.get('CUSTODY_MACHINE_STEPS', '20')),
    deadline=None,
    # The same examples on every run, so CI replays what was run before it
    # landed; CUSTODY_MACHINE_EXPLORE=1 draws new ones.
    derandomize=not os.environ.get('CUSTODY_MACHINE_EXPLORE'),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    verbosity=(Verbosity.verbose if os.environ.get('CUSTODY_MACHINE_VERBOSE')
               else Verbosity.normal),
    phases=([phase for phase in Phase if phase is not Phase.shrink]
            if os.environ.get('CUSTODY_MACHINE_SHRINK') == '0' else list(Phase)),
)
INVARIANTS = frozenset(
    int(part) for part in os.environ.get('CUSTODY_MACHINE_INVARIANTS', '1,2,3,4').split(',')
    if part.strip())
RULES_OFF = frozenset(
    part.strip() for part in os.environ.get('CUSTODY_MACHINE_RULES_OFF', '').split(',')
    if part.strip())

#: Staff at the start: certified custodians holding ``oek-1``.
FIRST_CUSTODIANS = {'adv-a': 'advocate', 'sup-b': 'supervisor'}
FIRST_SUPERVISOR = 'sup-b'
#: Staff an admin certifies later, one per role.
NEWCOMERS = {'advocate': 'adv-c', 'supervisor': 'sup-d'}
#: A supervisor account an admin makes to approve their own proposal.
SOCK = 'sup-sock'
STAFF = (*FIRST_CUSTODIANS, *NEWCOMERS.values())
SEALERS = (ADMIN, 'sup-b', 'sup-d')
YOUTHS = 2
DATA_ROLES = {'advocate', 'supervisor'}

picks = st.integers(min_value=0, max_value=7)


def out_lines(shares_file) -> list[str]:
    """``sealed <kid> to <name>`` lines of a recovery shares file."""
    return [f'sealed {share["kek"]} to {share["advocate"]}'
            for share in json.loads(shares_file.read_text())['shares']]


def enabled(name: str, extra=None):
    """A precondition: the rule is not switched off (and ``extra`` holds)."""
    return lambda self: name not in RULES_OFF and (extra is None or extra(self))


class CustodyMachine(RuleBasedStateMachine):
    """Ceremonies, staff changes, sealings and attacks on one deployment."""

    def __init__(self, couchdb_url: str, workdir) -> None:
        super().__init__()
        self.step = 0
        self.d = Deployment(couchdb_url, workdir)
        self.d.create_user_directly(ADMIN, ['admin'])
        self.d.create_user_directly(WORKER, ['worker'])
        for name, role in FIRST_CUSTODIANS.items():
            self.d.create_user_directly(name, [role])
        self.created_at = {name: 0 for name in (ADMIN, WORKER, *FIRST_CUSTODIANS)}
        self.touched_by: dict[str, set[str]] = {name: set() for name in self.created_at}
        self.ever_admin = {ADMIN}
        self.d.first_key(list(FIRST_CUSTODIANS))
        self.oracle = KeyOracle(self.d.org, self.d.signer_public())
        blob = json.loads(self.d.recovery_file.read_text())
        self.recovery_key = keys.AdvocateKey.unwrap(blob['wrapped'], RECOVERY_PASS)
        self.youths = [str(uuid.uuid4()) for _ in range(YOUTHS)]
        #: record id -> what the tablet kept: youth, plain, sealed copy, envelope, state.
        self.records: dict[str, dict] = {}
        self.kids_seen: list[str] = []
        self.revoked: dict[str, set[str]] = {}
        self.sealed_at: dict[str, int] = {}
        self.proposals: dict[str, int] = {}
        self.judged_sealings: set[str] = set()
        self.backups: list[dict] = []
        self.grants_ever: dict[str, dict] = {}
        self.record_copies: dict[tuple[str, str], dict] = {}
        self.personal_ever: dict[str, list] = {}
        self.attacker_keys: list[keys.OrgKeyPair] = []
        #: kid -> (record, envelope) sealed here to that version, as any tablet could.
        self.probes: dict[str, tuple[dict, dict]] = {}
        #: Versions the operator accepted to leave to the recovery key alone
        #: (until a recovery ceremony re-grants them).
        self.recovery_only: set[str] = set()
        for youth in range(YOUTHS):
            self._add_record(youth, 'desk')

    def teardown(self) -> None:
        self.d.close()

    # -- helpers -------------------------------------------------------------

    def _begin(self, what: str) -> None:
        self.step += 1
        note(f'step {self.step}: {what}')

    def _outcome(self, what: str, ok: bool, text: str = '') -> None:
        note(f'  -> {"accepted" if ok else "refused"}: {what} {text.strip()[-200:]}')

    def _manifest_kids(self) -> dict[str, dict]:
        return {entry['kid']: entry for entry in self.d.manifest()['keys']}

    def _next_kid(self) -> str:
        return f'oek-{len(self._manifest_kids()) + 1}'

    def _add_record(self, youth: int, path: str) -> None:
        plain = self.d.new_identity(self.youths[youth])
        sealed, envelope = self.d.seal(plain)
        entry = {'youth': self.youths[youth], 'plain': plain, 'sealed': sealed,
                 'envelope': envelope, 'pending': False, 'quarantined': False}
        if path == 'desk':
            answer = self.d.api(WORKER, 'POST', '/records',
                                {'document': sealed, 'envelopes': [envelope]})
            ok = answer.status_code == 201
            self._outcome('desk intake', ok, answer.text if not ok else '')
        else:
            docs = [Deployment.as_new_revision(sealed)]
            if path == 'sync':
                docs.append(Deployment.as_new_revision(envelope))
            answers = self.d.push(docs)
            ok = sealed['_id'] not in answers
            entry['pending'] = path == 'sync_hold'
            if path == 'sync' and envelope['_id'] in answers:
                entry['quarantined'] = True
            self._outcome(f'sync push ({path})', ok, json.dumps(answers))
        if ok:
            self.records[sealed['_id']] = entry

    def _sealed_records(self) -> list[str]:
        return sorted(record_id for record_id, entry in self.records.items()
                      if entry['youth'] in self.sealed_at)

    def _current_rev(self, record_id: str) -> str | None:
        doc = self.d.couch.get_or_none(self.d.db('records'), record_id)
        return doc['_rev'] if doc else None

    # -- staff ---------------------------------------------------------------

    @precondition(enabled('certify_newcomer'))
    @rule(role=st.sampled_from(sorted(NEWCOMERS)))
    def certify_newcomer(self, role):
        name = NEWCOMERS[role]
        self._begin(f'admin creates and certifies {role} {name}')
        if name in self.created_at:
            self._outcome('already on staff', False)
            return
        answer = self.d.api(ADMIN, 'POST', '/users', {
            'username': name, 'password': 'correct horse battery staple', 'roles': [role],
            'team': TEAM})
        self._outcome('create user', answer.status_code == 201, answer.text)
        if answer.status_code != 201:
            return
        self.created_at[name] = self.step
        self.touched_by[name] = {ADMIN}
        out = self.d.enroll_and_certify(name)
        self._outcome('enroll and certify', out.ok, out.text)
        if out.ok:
            self._share_pending(name)

    def _pending(self, name: str) -> dict[str, list[str]]:
        """What ``keys pending`` (as the admin) says ``name`` needs, and who holds it."""
        out = self.d.as_user(ADMIN, ['keys', '--home', self.d.home(ADMIN), 'pending'])
        self._outcome('keys pending', out.ok, out.text)
        needs = {}
        for line in out.text.splitlines():
            head, _, tail = line.partition(' (held by ')
            if head.startswith(f'{name} needs '):
                holders = tail.rstrip(')')
                needs[head.split(' needs ')[1]] = ([] if holders.startswith('nobody')
                                                   else holders.split(', '))
        return needs

    def _share_pending(self, name: str) -> None:
        """Each version ``name`` lacks is shared by its first holder who can."""
        for kid, holders in sorted(self._pending(name).items()):
            for holder in holders:
                out = self._share(holder, name, kid)
                if out.ok:
                    break

    def _share(self, holder: str, recipient: str, kid: str):
        out = self.d.as_user(holder, ['keys', '--home', self.d.home(holder), 'share', '--to',
                                      recipient, '--kid', kid], f'{KEY_PASS}\n')
        self._outcome(f'{holder} shares {kid} with {recipient}', out.ok, out.text)
        return out

    @precondition(enabled('share'))
    @rule(holder=st.sampled_from(STAFF), recipient=st.sampled_from(STAFF), pick=picks)
    def share(self, holder, recipient, pick):
        kids = [kid for kid, entry in self._manifest_kids().items()
                if entry['status'] != 'retired']
        kid = kids[pick % len(kids)]
        self._begin(f'{holder} shares {kid} with {recipient}')
        self._share(holder, recipient, kid)

    @precondition(enabled('disable_user'))
    @rule(name=st.sampled_from(STAFF))
    def disable_user(self, name):
        self._begin(f'admin disables {name}')
        answer = self.d.api(ADMIN, 'PATCH', f'/users/{name}', {'disabled': True})
        if answer.status_code == 200:
            self.touched_by.setdefault(name, set()).add(ADMIN)
        self._outcome('disable', answer.status_code == 200, answer.text)

    @precondition(enabled('change_role'))
    @rule(name=st.sampled_from(STAFF),
          role=st.sampled_from(['advocate', 'supervisor', 'worker']))
    def change_role(self, name, role):
        self._begin(f'admin makes {name} a {role}')
        before = (self.d.user(name) or {}).get('roles')
        answer = self.d.api(ADMIN, 'PATCH', f'/users/{name}', {'roles': [role]})
        # Giving someone the roles they hold already changes nothing.
        if answer.status_code == 200 and before != [role]:
            self.touched_by.setdefault(name, set()).add(ADMIN)
        self._outcome('change role', answer.status_code == 200, answer.text)

    @precondition(enabled('revoke_advocate'))
    @rule(name=st.sampled_from(STAFF))
    def revoke_advocate(self, name):
        kid = self._next_kid()
        self._begin(f'admin revokes {name}, rotating to {kid}')
        before = set(self._manifest_kids())
        out = self.d.as_user(ADMIN, ['advocate', '--home', self.d.home(ADMIN), 'revoke', name,
                                     '--kid', kid, '--accept-until', day(7), '--yes'],
                             f'{SIGNER_PASS}\n')
        self._outcome('revoke', out.ok, out.text)
        apk = self.d.couch.get_or_none(self.d.db('directory'), f'apk:{name}')
        # Revoked as the CLI said, or as the directory says, whichever holds.
        if (out.ok or (apk and apk.get('status') == 'revoked')) and name not in self.revoked:
            self.revoked[name] = before

    @precondition(enabled('disable_accepting_recovery_only'))
    @rule(name=st.sampled_from(STAFF))
    def disable_accepting_recovery_only(self, name):
        self._begin(f'admin disables {name}, accepting recovery-only versions')
        answer = self.d.api(ADMIN, 'PATCH', f'/users/{name}', {'disabled': True})
        versions = set()
        if answer.status_code == 409 and answer.json().get('code') == 'recovery_only':
            versions = set(answer.json()['fields']['versions'])
            answer = self.d.api(ADMIN, 'PATCH', f'/users/{name}?accept_recovery_only=true',
                                {'disabled': True})
        if answer.status_code == 200:
            self.touched_by.setdefault(name, set()).add(ADMIN)
            self.recovery_only |= versions
        self._outcome(f'disable (recovery-only accepted for {sorted(versions)})',
                      answer.status_code == 200, answer.text)

    @precondition(enabled('recovery_ceremony'))
    @rule()
    def recovery_ceremony(self):
        self._begin('admin exports, trustees re-grant offline, admin uploads')
        exported = self.d.workdir / f'export-{self.step}.json'
        shares = self.d.workdir / f'shares-{self.step}.json'
        out = self.d.as_user(ADMIN, ['recovery', 'export', '--home', self.d.home(ADMIN),
                                     '--out', str(exported)])
        self._outcome('recovery export', out.ok and exported.exists(), out.text)
        if not (out.ok and exported.exists()):
            return
        out = self.d.cli(['recovery', 'regrant', '--in', str(exported), '--recovery',
                          str(self.d.recovery_file), '--fingerprint',
                          self.d.signer_fingerprint, '--out', str(shares)],
                         f'{RECOVERY_PASS}\n')
        self._outcome('recovery regrant', out.ok, out.text)
        if not out.ok:
            return
        out = self.d.as_user(ADMIN, ['recovery', 'upload', str(shares), '--home',
                                     self.d.home(ADMIN)])
        self._outcome('recovery upload', out.ok, out.text)
        if out.ok:
            # Re-granted versions must open for a custodian again.
            regranted = {line.split()[1] for line in out_lines(shares)}
            self.recovery_only -= regranted

    # -- key versions ----------------------------------------------------------

    @precondition(enabled('rotate'))
    @rule(past=st.booleans())
    def rotate(self, past):
        kid = self._next_kid()
        until = day(-1) if past else day(7)
        self._begin(f'admin rotates to {kid}, old version accepted until {until}')
        out = self.d.admin_keys('rotate', '--kid', kid, '--accept-until', until)
        self._outcome('rotate', out.ok, out.text)

    @precondition(enabled('rotate_accepting_recovery_only'))
    @rule()
    def rotate_accepting_recovery_only(self):
        kid = self._next_kid()
        self._begin(f'admin rotates to {kid}, accepting a version only the recovery key holds')
        out = self.d.admin_keys('rotate', '--kid', kid, '--accept-until', day(7),
                                '--accept-recovery-only')
        if out.ok and 'grants to 0 holders' in out.text:
            self.recovery_only.add(kid)
        self._outcome('rotate (recovery-only accepted)', out.ok, out.text)

    @precondition(enabled('rewrap'))
    @rule(custodian=st.sampled_from(STAFF), pick=picks)
    def rewrap(self, custodian, pick):
        kids = self._manifest_kids()
        active = next(kid for kid, entry in kids.items() if entry['status'] == 'active')
        older = [kid for kid, entry in kids.items() if entry['status'] == 'decrypt-only']
        if not older:
            self._begin(f'{custodian} has nothing to rewrap')
            return
        old = older[pick % len(older)]
        self._begin(f'{custodian} rewraps {old} -> {active}')
        out = self.d.as_user(custodian, ['keys', '--home', self.d.home(custodian), 'rewrap',
                                         '--from', old, '--to', active, '--no-progress'],
                             f'{KEY_PASS}\n')
        self._outcome('rewrap', out.ok, out.text)

    @precondition(enabled('retire'))
    @rule(pick=picks)
    def retire(self, pick):
        older = [kid for kid, entry in self._manifest_kids().items()
                 if entry['status'] == 'decrypt-only']
        if not older:
            self._begin('nothing to retire')
            return
        kid = older[pick % len(older)]
        self._begin(f'admin retires {kid}')
        out = self.d.admin_keys('retire', '--kid', kid)
        self._outcome('retire', out.ok, out.text)

    # -- records ---------------------------------------------------------------

    @precondition(enabled('add_record'))
    @rule(youth=st.integers(min_value=0, max_value=YOUTHS - 1),
          path=st.sampled_from(['desk', 'sync', 'sync_hold']))
    def add_record(self, youth, path):
        if self.youths[youth] in self.sealed_at:
            self._begin(f'youth {youth} is sealed: new records are push_late_record')
            return
        self._begin(f'worker adds a record of youth {youth} by {path}')
        self._add_record(youth, path)

    @precondition(enabled('push_late_record', lambda self: self.sealed_at))
    @rule(pick=picks, path=st.sampled_from(['desk', 'sync']))
    def push_late_record(self, pick, path):
        sealed = [index for index, youth in enumerate(self.youths) if youth in self.sealed_at]
        youth = sealed[pick % len(sealed)]
        self._begin(f'a reissued tablet brings a new record of sealed youth {youth} by {path}')
        self._add_record(youth, path)

    @precondition(enabled('deliver_envelope',
                          lambda self: any(e['pending'] for e in self.records.values())))
    @rule(pick=picks)
    def deliver_envelope(self, pick):
        pending = sorted(record_id for record_id, entry in self.records.items()
                         if entry['pending'])
        record_id = pending[pick % len(pending)]
        entry = self.records[record_id]
        sealed = entry['youth'] in self.sealed_at
        self._begin(f'tablet delivers the held envelope of {record_id}'
                    f'{" (its youth is sealed)" if sealed else ""}')
        answers = self.d.push([Deployment.as_new_revision(entry['envelope'])])
        answer = answers.get(entry['envelope']['_id'])
        entry['pending'] = False
        if answer is not None:
            entry['quarantined'] = True
        self._outcome('late envelope', answer is None, json.dumps(answer))

    # -- sealing ---------------------------------------------------------------

    def _seal(self, youth: int, proposer: str, approver: str) -> None:
        out = self.d.as_user(proposer, ['sealing', '--home', self.d.home(proposer), 'propose',
                                        '--client-id', self.youths[youth],
                                        '--reason', 'erasure_request'])
        self._outcome('propose', out.ok, out.text)
        if not out.ok:
            return
        sealing_id = out.text.split('sealing ')[1].split()[0]
        self.proposals[sealing_id] = self.step
        out = self.d.as_user(approver, ['sealing', '--home', self.d.home(approver), 'approve',
                                        sealing_id, '--yes'])
        self._outcome('approve', out.ok, out.text)

    @precondition(enabled('seal_youth'))
    @rule(youth=st.integers(min_value=0, max_value=YOUTHS - 1),
          proposer=st.sampled_from(SEALERS), approver=st.sampled_from(SEALERS))
    def seal_youth(self, youth, proposer, approver):
        self._begin(f'{proposer} proposes sealing youth {youth}; {approver} approves')
        self._seal(youth, proposer, approver)

    @precondition(enabled('seal_as_documented'))
    @rule(youth=st.integers(min_value=0, max_value=YOUTHS - 1))
    def seal_as_documented(self, youth):
        # The documented order, with the first supervisor, so that sealings
        # complete often enough for the rules that follow one.
        self._begin(f'{ADMIN} proposes sealing youth {youth}; {FIRST_SUPERVISOR} approves')
        self._seal(youth, ADMIN, FIRST_SUPERVISOR)

    @precondition(enabled('seal_with_account_made_for_it'))
    @rule(youth=st.integers(min_value=0, max_value=YOUTHS - 1))
    def seal_with_account_made_for_it(self, youth):
        self._begin(f'admin makes {SOCK}, proposes sealing youth {youth}, approves as {SOCK}')
        if SOCK not in self.created_at:
            answer = self.d.api(ADMIN, 'POST', '/users', {
                'username': SOCK, 'password': 'correct horse battery staple',
                'roles': ['supervisor'], 'team': TEAM})
            self._outcome(f'admin creates {SOCK}', answer.status_code == 201, answer.text)
            if answer.status_code == 201:
                self.created_at[SOCK] = self.step
                self.touched_by[SOCK] = {ADMIN}
        self._seal(youth, ADMIN, SOCK)

    # -- key-vault backups -------------------------------------------------------

    @precondition(enabled('backup_keyvault'))
    @rule()
    def backup_keyvault(self):
        self._begin('operator backs up the key vault')
        path = self.d.workdir / f'keyvault-{len(self.backups)}.jsonl'
        out = self.d.operator('keyvault', 'backup', '--out', str(path))
        self._outcome('backup', out.ok, out.text)
        if out.ok:
            lines = path.read_text().splitlines()[1:]
            self.backups.append({'step': self.step, 'path': path,
                                 'docs': [json.loads(line) for line in lines]})

    @precondition(enabled('restore_keyvault', lambda self: self.backups))
    @rule(pick=picks)
    def restore_keyvault(self, pick):
        backup = self.backups[pick % len(self.backups)]
        self._begin(f'operator restores the backup of step {backup["step"]}')
        out = self.d.operator('keyvault', 'restore', str(backup['path']))
        self._outcome('restore', out.ok, out.text)

    # -- attacks -----------------------------------------------------------------

    @precondition(enabled('recreate_after_tombstone', lambda self: self._sealed_records()))
    @rule(pick=picks)
    def recreate_after_tombstone(self, pick):
        candidates = self._sealed_records()
        record_id = candidates[pick % len(candidates)]
        entry = self.records[record_id]
        self._begin(f'tablet deletes sealed {record_id}, worker re-creates it at the desk')
        rev = self._current_rev(record_id)
        if rev is not None:
            tombstone = Deployment.as_new_revision({'_id': record_id, '_deleted': True}, rev)
            answers = self.d.push([tombstone])
            self._outcome('tombstone', record_id not in answers, json.dumps(answers))
        answer = self.d.api(WORKER, 'POST', '/records', {'document': entry['sealed'],
                                                         'envelopes': [entry['envelope']]})
        self._outcome('desk re-creation', answer.status_code == 201, answer.text)

    @precondition(enabled('push_edit_after_sealing', lambda self: self._sealed_records()))
    @rule(pick=picks)
    def push_edit_after_sealing(self, pick):
        candidates = self._sealed_records()
        record_id = candidates[pick % len(candidates)]
        entry = self.records[record_id]
        self._begin(f'tablet pushes an edit of sealed {record_id} with a new record key')
        plain = dict(entry['plain'], legal_last_name=f'Edited{uuid.uuid4().hex[:8]}')
        sealed, envelope = self.d.seal(plain)
        rev = self._current_rev(record_id)
        answers = self.d.push([Deployment.as_new_revision(sealed, rev),
                               Deployment.as_new_revision(envelope)])
        self._outcome('edit', not answers, json.dumps(answers))

    @precondition(enabled('admin_grants_itself_data_role'))
    @rule(role=st.sampled_from(sorted(DATA_ROLES)))
    def admin_grants_itself_data_role(self, role):
        self._begin(f'admin gives itself the {role} role, enrolls and certifies itself')
        answer = self.d.api(ADMIN, 'PATCH', f'/users/{ADMIN}',
                            {'roles': ['admin', role], 'team': TEAM})
        self._outcome('self role change', answer.status_code == 200, answer.text)
        if answer.status_code != 200:
            return
        self.touched_by[ADMIN].add(ADMIN)
        out = self.d.enroll_and_certify(ADMIN)
        self._outcome('self enroll and certify', out.ok, out.text)
        if out.ok:
            # The holders' routine: whoever `keys pending` lists gets shared.
            self._share_pending(ADMIN)

    @precondition(enabled('plant_grant'))
    @rule(victim=st.sampled_from(STAFF))
    def plant_grant(self, victim):
        kid = next(kid for kid, entry in self._manifest_kids().items()
                   if entry['status'] == 'active')
        self._begin(f'admin plants a grant of {kid} for {victim}, signed by a key of its own')
        enrolled = self.d.api(ADMIN, 'GET', f'/advocates/keys/{victim}')
        if enrolled.status_code != 200:
            self._outcome('no enrolled key to plant for', False, enrolled.text)
            return
        rogue = keys.OrgKeyPair.generate(kid)
        self.attacker_keys.append(rogue)
        grant = keys.seal_grant(rogue, enrolled.json()['public'], org=self.d.org,
                                granted_by=ADMIN, signing_key=keys.SigningKey.generate())
        answer = self.d.api(ADMIN, 'POST', '/keys/grants', {'grants': [grant]})
        self._outcome('planted grant', answer.status_code == 201, answer.text)

    # -- the oracle ----------------------------------------------------------------

    def _refresh(self) -> None:
        """Read everything that exists now, and keep what ever existed."""
        self.manifest = self.d.manifest()
        self.oracle.remember_versions(self.manifest)
        for kid, entry in self._manifest_kids().items():
            if kid not in self.kids_seen:
                self.kids_seen.append(kid)
            if kid not in self.probes and entry.get('pub'):
                body = keys.build_manifest(self.d.org, 1, [
                    {'kid': kid, 'suite': entry['suite'], 'pub': entry['pub'],
                     'status': 'active'}])
                plain = self.d.new_identity(str(uuid.uuid4()))
                self.probes[kid] = keys.seal_document(
                    plain, paths=schemas.identifying_paths('identity'), org=self.d.org,
                    manifest_body=body)
        self.grants = self.d.docs('keyvault', 'grant:')
        for grant in [*self.grants, *(doc for backup in self.backups for doc in backup['docs']
                                      if doc['_id'].startswith('grant:'))]:
            self.grants_ever[json.dumps({k: v for k, v in grant.items() if k != '_rev'},
                                        sort_keys=True)] = grant
        self.envelopes = self.d.docs('keyvault', 'rk:')
        self.quarantined = [doc['doc'] for doc in self.d.docs('quarantine', 'q:')
                            if isinstance(doc.get('doc'), dict)
                            and str(doc['doc'].get('_id', '')).startswith('rk:')]
        self.live_records = self.d.docs('records')
        for doc in self.d.record_revisions():
            self.record_copies[(doc['_id'], doc['_rev'])] = doc
        self.users = {doc['username']: doc for doc in self.d.docs('directory', 'user:')}
        self.apks = {doc['advocate']: doc for doc in self.d.docs('directory', 'apk:')}
        for name, apk in self.apks.items():
            personal = self.oracle.personal(name, apk['wrapped'], KEY_PASS)
            held = self.personal_ever.setdefault(name, [])
            if personal is not None and all(p.key_id != personal.key_id for p in held):
                held.append(personal)
        for user in self.users.values():
            if 'admin' in user['roles']:
                self.ever_admin.add(user['username'])
        for doc in self.d.docs('directory', 'sealing:'):
            if doc['status'] == 'sealed' and doc.get('client_id'):
                self.sealed_at.setdefault(doc['client_id'], self.step)
        self.sealings = self.d.docs('directory', 'sealing:')

    def _held_anywhere(self, name: str) -> list[keys.OrgKeyPair]:
        """Org keys ``name`` can get from any grant to them ever stored or backed up."""
        found = []
        for grant in self.grants_ever.values():
            if grant.get('advocate') != name:
                continue
            for personal in self.personal_ever.get(name, []):
                key = self.oracle.open_grant(grant, personal)
                if key is not None:
                    found.append(key)
        return found

    def _every_key(self) -> list[keys.OrgKeyPair]:
        found = list(self.attacker_keys)
        for name in self.personal_ever:
            found += self._held_anywhere(name)
        for grant in self.grants_ever.values():
            if grant.get('advocate') == keys.RECOVERY_ADVOCATE:
                key = self.oracle.open_grant(grant, self.recovery_key)
                if key is not None:
                    found.append(key)
        return found

    def _sealed_to(self, kids: set[str]) -> list[tuple[dict, dict]]:
        """Records sealed here to each of ``kids`` (what a tablet may seal any time)."""
        return [self.probes[kid] for kid in sorted(kids) if kid in self.probes]

    def _backed_up_envelopes(self, after_step: int = -1) -> list[dict]:
        return [doc for backup in self.backups if backup['step'] > after_step
                for doc in backup['docs'] if doc['_id'].startswith('rk:')]

    def _custodians(self) -> dict[str, keys.Keyring | None]:
        rings = {}
        for name, user in self.users.items():
            apk = self.apks.get(name)
            if user.get('disabled') or not DATA_ROLES & set(user['roles']) \
                    or name in self.ever_admin or apk is None or apk['status'] != 'certified':
                continue
            personal = self.oracle.personal(name, apk['wrapped'], KEY_PASS)
            mine = [grant for grant in self.grants if grant.get('advocate') == name]
            rings[name] = self.oracle.client_keyring(mine, personal, self.manifest)
        return rings

    def check_every_live_record_opens_for_a_custodian(self) -> None:
        custodians = self._custodians()
        for doc in self.live_records:
            entry = self.records.get(doc['_id'])
            if doc.get('client_id') in self.sealed_at or entry is None \
                    or entry['pending'] or entry['quarantined']:
                continue
            keks = {env['kek'] for env in self.envelopes if env.get('doc') == doc['_id']}
            if keks and keks <= self.recovery_only:
                continue  # left to the recovery key, explicitly and audited
            if any(ring is not None and opens(doc, self.envelopes, [ring], self.d.org)
                   for ring in custodians.values()):
                continue
            keks = sorted({env['kek'] for env in self.envelopes if env.get('doc') == doc['_id']})
            held = {name: list(ring.kids) if ring else None for name, ring in custodians.items()}
            raise AssertionError(
                f'invariant 1: live record {doc["_id"]} (envelope sealed to {keks}) opens for '
                f'no active custodian; custodians and the versions their CLI loads: {held}')

    def check_sealed_youth_stay_sealed(self) -> None:
        rings = keyrings(self._every_key())
        quarantine_and_vault = [*self.envelopes, *self.quarantined]
        for doc in self.record_copies.values():
            youth = doc.get('client_id')
            if youth not in self.sealed_at:
                continue
            envelopes = quarantine_and_vault + self._backed_up_envelopes(self.sealed_at[youth])
            if opens(doc, envelopes, rings, self.d.org) is not None:
                raise AssertionError(
                    f'invariant 2: record {doc["_id"]} (rev {doc["_rev"]}) of a sealed youth '
                    'opens with a key that exists')

    def check_revoked_advocates_open_nothing_newer(self) -> None:
        everywhere = [*self.envelopes, *self.quarantined, *self._backed_up_envelopes()]
        for name, known in self.revoked.items():
            newer = [key for key in self._held_anywhere(name) if key.kid not in known]
            if not newer:
                continue
            rings = keyrings(newer)
            for doc, envelope in [*self._sealed_to(set(self.kids_seen) - known),
                                  *((doc, None) for doc in self.record_copies.values())]:
                if opens(doc, [envelope] if envelope else everywhere, rings,
                         self.d.org) is not None:
                    what = f'a record sealed to {envelope["kek"]}' if envelope else doc['_id']
                    raise AssertionError(
                        f'invariant 3: revoked {name} opens {what} with version(s) '
                        f'{sorted({key.kid for key in newer})} made after the revocation')

    def check_admins_read_nothing_and_sealings_take_two(self) -> None:
        everywhere = [*self.envelopes, *self.quarantined, *self._backed_up_envelopes()]
        for name in sorted(self.ever_admin):
            held = self._held_anywhere(name)
            if not held:
                continue
            rings = keyrings(held)
            for doc, envelope in [*self._sealed_to(set(self.kids_seen)),
                                  *((doc, None) for doc in self.record_copies.values())]:
                if opens(doc, [envelope] if envelope else everywhere, rings,
                         self.d.org) is not None:
                    what = f'a record sealed to {envelope["kek"]}' if envelope else doc['_id']
                    raise AssertionError(
                        f'invariant 4: {name}, who has held the admin role, opens {what} '
                        f'with {sorted({key.kid for key in held})}')
        for sealing in self.sealings:
            # Judged once, at the step it completed: later staff changes do
            # not make an earlier sealing wrong.
            if sealing['status'] not in ('sealed', 'approving') \
                    or sealing['_id'] in self.judged_sealings:
                continue
            self.judged_sealings.add(sealing['_id'])
            proposer, approver = sealing['proposed_by'], sealing.get('approved_by')
            proposed_at = self.proposals.get(sealing['_id'][len('sealing:'):], 0)
            problems = []
            if proposer == approver:
                problems.append('one person proposed and approved')
            for person, other in ((proposer, approver), (approver, proposer)):
                if self.created_at.get(person, proposed_at) >= proposed_at:
                    problems.append(f'{person} did not exist before the proposal')
                if other in self.touched_by.get(person, set()):
                    problems.append(f'{person} was created or changed by {other}')
            if problems:
                raise AssertionError(
                    f'invariant 4: sealing {sealing["_id"]} by {proposer} and {approver} '
                    f'completed although {"; ".join(problems)}')

    @invariant()
    def custody_holds(self):
        self._refresh()
        checks = {1: self.check_every_live_record_opens_for_a_custodian,
                  2: self.check_sealed_youth_stay_sealed,
                  3: self.check_revoked_advocates_open_nothing_newer,
                  4: self.check_admins_read_nothing_and_sealings_take_two}
        for number in sorted(INVARIANTS):
            checks[number]()


def test_key_custody_survives_staff_changes_sealings_and_attacks(couch_server,
                                                                 tmp_path_factory):
    run_state_machine_as_test(
        lambda: CustodyMachine(couch_server.url, tmp_path_factory.mktemp('custody')),
        settings=SETTINGS)
