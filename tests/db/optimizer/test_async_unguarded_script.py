"""An asyncio script without ``if __name__ == "__main__":`` still runs: analysis falls back to a thread.

The analysis worker is a spawned process, which imports the main script again; an
unguarded script (or one read from standard input) makes that worker fail. The
optimizer then says why, once, and analyses in a thread instead of failing the call.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

UNGUARDED = textwrap.dedent(
    """
    import asyncio, sys
    import queryopt

    async def main():
        settings = queryopt.Settings(dsn=sys.argv[1] if len(sys.argv) > 1 else DSN,
                                     recorder=queryopt.RecorderPolicy(enabled=False))
        async with queryopt.AsyncOptimizer(settings=settings) as db:
            print(await db.query("SELECT %s::int + 1", [41]), flush=True)

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_an_unguarded_script_gets_its_rows_and_one_warning(dsn: str, tmp_path: object, how: str) -> None:
    env = {**os.environ}
    env.pop("QUERYOPT_DSN", None)
    if how == "file":
        script = os.path.join(str(tmp_path), "app.py")
        with open(script, "w") as handle:
            handle.write(UNGUARDED)
        run = subprocess.run(
            [sys.executable, script, dsn], capture_output=True, text=True, timeout=120, env=env, check=False
        )
    else:
        run = subprocess.run(
            [sys.executable, "-"],
            input=f"DSN = {dsn!r}\n" + UNGUARDED,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[(42,)]"
    warnings = [line for line in run.stderr.splitlines() if "analysis worker process could not start" in line]
    assert len(warnings) == 1, run.stderr
