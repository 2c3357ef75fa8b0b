"""Program commands of the ``fieldvault`` CLI: what is due, case actions, reports.

Staff commands over the HTTP API, so the server's rules apply unchanged: a
supervisor sees their team, a liaison only suppressed quarterly aggregates.

* ``program due``: missed check-ins, holds passing to lost contact, sealings
  due; ``--propose`` posts the two-person sealing proposal of each sealing due.
* ``program act CASE ACTION [--param name=value]``: one lifecycle action.
* ``report MEASURE [--period] [--by] [--since] [--until] [--csv] [--svg PATH]``.
* ``report-hmis [--since] [--until]``: the comparable-database aggregate (CSV).
"""

from __future__ import annotations

import json
import pathlib
from urllib.parse import quote, urlencode

import click

from service.charts import report_svg
from service.cli_staff import Api, Home
from service.program import DIMENSIONS, MEASURES, MEDIANS, PERIODS, hmis_csv, table_csv

__all__ = ['register']


def _api(ctx: click.Context) -> Api:
    return Api(ctx.obj['home'])


def _show_table(report: dict) -> None:
    scope = report['scope'] + (' (suppressed: S)' if report['suppressed'] else '')
    click.echo(f'{report["measure"]} by {report["period"]}'
               f'{" and " + report["by"] if report["by"] else ""}; {scope}')
    width = max([len(label) for label in [*report['rows'], 'period', 'total']])
    cells = [['S' if value is None else str(value) for value in row] for row in report['cells']]
    header = ['period'.ljust(width), *report['columns'], 'total']
    click.echo('  '.join(header))
    for label, row, total in zip(report['rows'], cells, report['row_totals']):
        click.echo('  '.join([label.ljust(width), *row, 'S' if total is None else str(total)]))
    totals = ['S' if value is None else str(value) for value in report['column_totals']]
    grand = 'S' if report['total'] is None else str(report['total'])
    click.echo('  '.join(['total'.ljust(width), *totals, grand]))


def register(cli: click.Group) -> None:
    """Add the ``program`` and ``report`` commands to the root group."""

    @cli.group()
    @click.option('--home', default='~/.fieldvault', show_default=True)
    @click.pass_context
    def program(ctx: click.Context, home: str) -> None:
        """Program cases: what is due, and lifecycle actions."""
        ctx.obj = {'home': Home(home)}

    @program.command('due')
    @click.option('--propose', is_flag=True,
                  help='Propose the two-person sealing of every sealing due without one.')
    @click.pass_context
    def program_due(ctx: click.Context, propose: bool) -> None:
        """List what is due on your team's cases (supervisors)."""
        api = _api(ctx)
        due = api.call('GET', '/program/due')['due']
        if not due:
            click.echo('nothing is due')
        for item in due:
            extra = (f' week {item["week"]}' if item['kind'] == 'missed_checkin'
                     else f' ({item["basis"]})' if item['kind'] == 'sealing_due' else '')
            click.echo(f'{item["due_at"]}  {item["kind"]}{extra}  {item["case"]}  '
                       f'[{item["state"]}]')
            if propose and item['kind'] == 'sealing_due' and not item['proposal_pending']:
                made = api.call('POST', '/sealings', item['proposal'])
                click.echo(f'  proposed sealing {made["id"]}: a second person (the other of '
                           f'admin and supervisor) approves it with `fieldvault sealing '
                           f'approve {made["id"]}`')

    @program.command('act')
    @click.argument('case_id')
    @click.argument('action')
    @click.option('--param', 'params', multiple=True, metavar='NAME=VALUE',
                  help='An action parameter (JSON values allowed), e.g. hold_reason=custody.')
    @click.pass_context
    def program_act(ctx: click.Context, case_id: str, action: str, params: tuple[str]) -> None:
        """Take one lifecycle action on a case; a refusal names its guard."""
        body: dict = {'action': action}
        for param in params:
            name, sep, value = param.partition('=')
            if not sep:
                raise click.BadParameter('use NAME=VALUE', param_hint='--param')
            try:
                body[name] = json.loads(value)
            except ValueError:
                body[name] = value
        case = _api(ctx).call('POST', f'/cases/{quote(case_id, safe=":")}/actions', body)
        week = f' week {case["current_week"]}' if case.get('current_week') else ''
        click.echo(f'{case["_id"]}: {case["state"]}{week}')

    @cli.command('report')
    @click.argument('measure', type=click.Choice(sorted([*MEASURES, *MEDIANS])))
    @click.option('--home', default='~/.fieldvault', show_default=True)
    @click.option('--period', type=click.Choice(PERIODS), default='quarter', show_default=True)
    @click.option('--by', type=click.Choice(DIMENSIONS), default=None)
    @click.option('--since', default=None, metavar='YYYY-MM')
    @click.option('--until', default=None, metavar='YYYY-MM')
    @click.option('--csv', 'as_csv', is_flag=True, help='Print CSV instead of a table.')
    @click.option('--svg', 'svg_path', type=click.Path(dir_okay=False), default=None,
                  help='Also write a bar chart (SVG) to this file.')
    def report(measure: str, home: str, period: str, by: str | None, since: str | None,
               until: str | None, as_csv: bool, svg_path: str | None) -> None:
        """Print an aggregate report under your role's rules (team, or suppressed)."""
        params = {name: value for name, value in (('period', period), ('by', by),
                                                  ('since', since), ('until', until)) if value}
        result = Api(Home(home)).call('GET', f'/reports/{measure}?{urlencode(params)}')
        if as_csv:
            click.echo(table_csv(result), nl=False)
        else:
            _show_table(result)
        if svg_path:
            pathlib.Path(svg_path).write_text(report_svg(result), encoding='utf-8')
            click.echo(f'chart written to {svg_path}', err=True)

    @cli.command('report-hmis')
    @click.option('--home', default='~/.fieldvault', show_default=True)
    @click.option('--since', default=None, metavar='YYYY-MM')
    @click.option('--until', default=None, metavar='YYYY-MM')
    def report_hmis(home: str, since: str | None, until: str | None) -> None:
        """Print the comparable-database aggregate as CSV (always suppressed)."""
        params = {name: value for name, value in (('since', since), ('until', until)) if value}
        result = Api(Home(home)).call('GET', f'/reports-hmis?{urlencode(params)}')
        click.echo(hmis_csv(result), nl=False)
