"""The OpenAPI description says what the API answers: Schemathesis with every check (server errors,
undeclared statuses, bodies and headers unlike the schema, schema-violating requests accepted,
valid ones refused, methods and Allow headers, authentication ignored, stateful use after delete)
against a real `callqa serve` on SQLite and on PostgreSQL, signed in as the administrator (the role
that may call every route). Settings in ``schemathesis.toml``; repeatable: a fixed seed, no example
database carried between runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = 25


def test_schemathesis_with_every_check_finds_nothing(callqa_serve, db_url, tmp_path):
    env = {"CALLQA_DATABASE_URL": db_url, "CALLQA_WEBHOOK_SECRET": "pbx-secret-for-fuzzing",
           "CALLQA_IMPORT_DIRS": f'["{tmp_path / "imports"}"]'}
    (tmp_path / "imports").mkdir()
    with callqa_serve("--workers", "0", env=env) as served:
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", str(ROOT / "schemathesis.toml"), "run",
             f"{served.base}/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES), "--seed", "20261207",
             "--generation-database", "none", "--workers", "2", "--continue-on-failure", "--no-color"],
            cwd=tmp_path, capture_output=True, text=True, timeout=900,
            env={**os.environ, **env, "CALLQA_DATA_DIR": str(tmp_path / "data"),
                 "SCHEMATHESIS_HOOKS": str(ROOT / "tests" / "api" / "schemathesis_hooks.py")},
        )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-12000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected and tested and int(tested.group(1)) == int(selected.group(2)) >= 40, report[-3000:]  # every route
