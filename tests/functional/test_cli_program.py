"""``fieldvault report`` and ``fieldvault program`` over real HTTP, under the same rules as the API."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from fieldvault import cli
from tests.conftest import PASSWORD
from tests.functional.test_program_cases import Youth
from tests.functional.test_program_reports import data  # noqa: F401 - fixture

pytestmark = pytest.mark.functional


def _login(runner, live, tmp_path, username) -> str:
    home = str(tmp_path / username)
    result = runner.invoke(cli, ['login', '--server', live.url, '--username', username,
                                 '--home', home, '--password', PASSWORD])
    assert result.exit_code == 0, result.output
    return home


def test_report_prints_team_figures_csv_and_a_chart(live, users, data, tmp_path):  # noqa: F811
    users.create('sup-cli', ['supervisor'], team='team-a')
    runner = CliRunner()
    home = _login(runner, live, tmp_path, 'sup-cli')
    table = runner.invoke(cli, ['report', 'screenings', '--home', home, '--period', 'month'])
    assert table.exit_code == 0, table.output
    assert 'team:team-a' in table.output
    assert '2025-11' in table.output and 'total' in table.output
    chart = tmp_path / 'enrollments.svg'
    result = runner.invoke(cli, ['report', 'enrollments', '--home', home, '--by',
                                 'service_area', '--csv', '--svg', str(chart)])
    assert result.exit_code == 0, result.output
    assert 'period,spa-1,spa-2,total\n2025-Q4,13,4,17\n' in result.output
    svg = chart.read_text()
    assert svg.startswith('<svg') and 'spa-2' in svg
    hmis = runner.invoke(cli, ['report-hmis', '--home', home, '--since', '2025-01'])
    assert hmis.exit_code == 0, hmis.output
    assert 'screenings by detail,QYIT,31' in hmis.output


def test_report_gives_a_liaison_suppressed_quarters_only(live, users, data, tmp_path):  # noqa: F811
    users.create('liaison-cli', ['liaison'], team=None)
    runner = CliRunner()
    home = _login(runner, live, tmp_path, 'liaison-cli')
    monthly = runner.invoke(cli, ['report', 'screenings', '--home', home, '--period', 'month'])
    assert monthly.exit_code == 1
    assert 'liaison_rules' in monthly.output
    result = runner.invoke(cli, ['report', 'enrollments', '--home', home, '--by',
                                 'service_area', '--csv'])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == 'period,spa-1,spa-2,total'
    for line in lines[1:]:
        for cell in line.split(',')[1:]:
            assert cell == 'S' or not 1 <= int(cell) <= 10, result.output


def test_program_due_lists_and_proposes_sealings(live, client, users, services, tmp_path):
    users.create('sup-due', ['supervisor'], team='team-a')
    staff = {'worker': users.bearer(users.token('worker-1', ['worker'])),
             'advocate': users.bearer(users.token('adv-due', ['advocate']))}
    youth = Youth(client, services, staff)
    youth.ok('advocate', 'request_sealing')
    runner = CliRunner()
    home = _login(runner, live, tmp_path, 'sup-due')
    result = runner.invoke(cli, ['program', '--home', home, 'due', '--propose'])
    assert result.exit_code == 0, result.output
    assert f'sealing_due (youth_request)  {youth.case_id}' in result.output
    assert 'proposed sealing' in result.output
    again = runner.invoke(cli, ['program', '--home', home, 'due', '--propose'])
    assert 'proposed sealing' not in again.output
    act = runner.invoke(cli, ['program', '--home', home, 'act', youth.case_id, 'discharge'])
    assert act.exit_code == 1
    assert 'transition_refused' in act.output and '"state"' in act.output


def test_report_prints_case_records_by_dimension_and_the_median(live, users, services,
                                                                 tmp_path):
    from tests.functional.test_program_case_reports import _case, _checkin
    users.create('w-cli-med', ['worker'], team='team-a')
    users.create('sup-cli-med', ['supervisor'], team='team-a')
    served = _case('w-cli-med', area='spa-5', consented_at='2025-11-03T10:00:00Z')
    part2 = _case('w-cli-med', area='spa-6', part2=True, consented_at='2025-11-03T10:00:00Z')
    services.couch.bulk_docs(services.db('records'), [
        served, part2, _checkin(served, '2025-11-05T10:00:00Z'),
        _checkin(part2, '2025-11-03T11:00:00Z')])
    runner = CliRunner()
    home = _login(runner, live, tmp_path, 'sup-cli-med')
    checkins = runner.invoke(cli, ['report', 'checkins', '--home', home, '--by',
                                   'service_area', '--csv'])
    assert checkins.exit_code == 0, checkins.output
    assert checkins.output.splitlines() == ['period,spa-5,total', '2025-Q4,1,1', 'total,1,1']
    chart = tmp_path / 'first-service.svg'
    median = runner.invoke(cli, ['report', 'first_service_hours', '--home', home, '--period',
                                 'month', '--csv', '--svg', str(chart)])
    assert median.exit_code == 0, median.output
    assert median.output.splitlines()[:2] == ['period,median,total', '2025-11,48.0,48.0']
    assert 'median, hours' in chart.read_text()
