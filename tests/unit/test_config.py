"""Configuration: typed fields, variables read once, refusals, documentation."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from service.config import Config, ConfigError

pytestmark = pytest.mark.unit

OPERATIONS = pathlib.Path(__file__).resolve().parents[2] / 'docs' / 'OPERATIONS.md'


def test_every_variable_is_read_with_its_type():
    config = Config.from_env({
        'FIELDVAULT_BIND_PORT': '9000',
        'FIELDVAULT_CORS_ORIGINS': ' https://a , ,https://b',
        'FIELDVAULT_COUCHDB_URL': 'https://db.example:6984/',
        'FIELDVAULT_LOG_LEVEL': 'debug',
        'FIELDVAULT_ORG': 'org-acme',
        'FIELDVAULT_SEALING_WAITING_DAYS': '0',
        'FIELDVAULT_COUCHDB_USER': '',
        'FIELDVAULT_INSTRUMENT_DIR': '/srv/packs',
    })
    assert config.bind_port == 9000
    assert config.cors_origins == ('https://a', 'https://b')
    assert config.couchdb_url == 'https://db.example:6984'
    assert config.log_level == 'DEBUG'
    assert config.org == 'org-acme'
    assert config.sealing_waiting_days == 0
    assert config.couchdb_user is None
    assert config.instrument_dir == '/srv/packs'
    # Untouched settings keep their defaults.
    assert config.token_ttl == Config().token_ttl == 3600


def test_the_process_environment_is_read_only_by_from_env(monkeypatch):
    monkeypatch.setenv('FIELDVAULT_ORG', 'org-from-env')
    assert Config.from_env().org == 'org-from-env'
    assert Config().org == 'org-default'
    assert Config(org='org-given').org == 'org-given'


def test_overrides_win_over_variables():
    config = Config.from_env({'FIELDVAULT_ORG': 'org-env', 'FIELDVAULT_BIND_PORT': '9000'},
                             org='org-given')
    assert (config.org, config.bind_port) == ('org-given', 9000)


@pytest.mark.parametrize('name, value, fragment', [
    ('FIELDVAULT_BIND_PORT', 'eighty', 'FIELDVAULT_BIND_PORT'),
    ('FIELDVAULT_BIND_PORT', '0', 'positive integer'),
    ('FIELDVAULT_SEALING_WAITING_DAYS', '-1', 'zero or a positive integer'),
    ('FIELDVAULT_COUCHDB_URL', 'ftp://db.example', 'http:// or https://'),
    ('FIELDVAULT_ORG', 'Org Acme', 'lowercase letters'),
    ('FIELDVAULT_LOG_LEVEL', 'LOUD', 'DEBUG, INFO, WARNING or ERROR'),
])
def test_a_malformed_variable_is_refused_by_name(name, value, fragment):
    with pytest.raises(ConfigError, match=fragment) as caught:
        Config.from_env({name: value})
    assert str(caught.value).startswith(name + ' ')


def test_unknown_variables_and_settings_are_refused():
    with pytest.raises(ConfigError, match='unknown variables: FIELDVAULT_COUCHDB_URl'):
        Config.from_env({'FIELDVAULT_COUCHDB_URl': 'http://elsewhere:5984'})
    with pytest.raises(ConfigError, match='unknown settings: couchdb_uri'):
        Config.from_env({}, couchdb_uri='http://elsewhere:5984')
    # Variables of other programs are not ours to judge.
    assert Config.from_env({'PATH': '/bin', 'FIELDVAULTX': '1'}).org == 'org-default'


def test_a_long_poll_must_end_before_the_worker_timeout():
    with pytest.raises(ConfigError, match='FIELDVAULT_LONGPOLL_MAX_SECONDS'):
        Config.from_env({'FIELDVAULT_LONGPOLL_MAX_SECONDS': '60', 'FIELDVAULT_WEB_TIMEOUT': '60'})
    with pytest.raises(ConfigError, match='FIELDVAULT_LONGPOLL_MAX_SECONDS'):
        Config().replace(web_timeout=25)
    assert Config().replace(web_timeout=26).web_timeout == 26


def test_a_config_is_immutable_and_replace_returns_a_copy():
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.org = 'org-other'  # type: ignore[misc]  # the assignment under test
    changed = config.replace(org='org-other')
    assert (config.org, changed.org) == ('org-default', 'org-other')


def test_secrets_are_never_shown():
    config = Config.from_env({'FIELDVAULT_COUCHDB_PASSWORD': 'hunter2hunter2',
                              'FIELDVAULT_BOOTSTRAP_TOKEN': 'first-admin-secret'})
    shown = repr(config)
    assert 'hunter2' not in shown
    assert 'first-admin-secret' not in shown
    assert "couchdb_password='***'" in shown
    assert "org='org-default'" in shown


def test_every_setting_declares_its_coercer_and_help_in_name_order():
    fields = dataclasses.fields(Config)
    assert [field.name for field in fields] == sorted(field.name for field in fields)
    for field in fields:
        assert callable(field.metadata['coerce']), field.name
        assert field.metadata['help'], field.name
        assert field.kw_only, field.name


def test_the_operations_guide_lists_every_variable_with_its_default():
    documented = [line for line in OPERATIONS.read_text(encoding='utf-8').splitlines()
                  if line.startswith('| `FIELDVAULT_')]
    assert documented == [f'| `{name}` | `{default}` | {text} |'
                          for name, default, text in Config.describe()]
