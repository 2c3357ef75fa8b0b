"""Run every benchmark in bench/, one after another, with its default settings.

`make bench` calls this. Each benchmark runs in its own process (they start
their own pouchdb-server and gunicorn where they need them), never two at
once: the machine has 2 shared cores, and a benchmark that shared them with
another would measure the other one too. The output is each benchmark's own
report, under a heading that names the command to rerun it alone.

    .venv/bin/python bench/run_all.py [--only crypto,sync]
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: Name -> arguments after the interpreter, in the order they run.
BENCHMARKS = {
    'api': ['bench/api_throughput.py'],
    'crypto': ['bench/crypto.py'],
    'sync': ['-m', 'bench.sync'],
    'push_steps': ['-m', 'bench.push_steps'],
    'rotation': ['-m', 'bench.rotation'],
    'tablet': ['-m', 'bench.tablet_capture'],
    'fleet': ['-m', 'bench.fleet'],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--only', default=','.join(BENCHMARKS),
                        help='comma-separated subset of: ' + ', '.join(BENCHMARKS))
    args = parser.parse_args()
    names = [name.strip() for name in args.only.split(',') if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f'unknown benchmark(s): {", ".join(unknown)}')
    failed = []
    for name in names:
        command = [sys.executable, *BENCHMARKS[name]]
        print(f'== {name}: {" ".join(command[1:])}', flush=True)
        started = time.monotonic()
        if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
            failed.append(name)
        print(f'== {name}: {time.monotonic() - started:.0f} s', flush=True)
    if failed:
        print(f'failed: {", ".join(failed)}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
