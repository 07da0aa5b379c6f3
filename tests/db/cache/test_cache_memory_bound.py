"""``CachePolicy.max_bytes`` bounds what the cache really takes: the process grows by about max_bytes, not 6x.

A child process (a clean heap) fills an optimizer's cache with small results, the
common case where per-entry overhead (key, entry, dictionary slot) outweighs the
rows, until the cache has evicted a good share of them; its resident memory growth
is compared with ``max_bytes``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

MAX_BYTES = 16 * 1024 * 1024

CHILD = textwrap.dedent(
    """
    import gc, json, os, sys
    from queryopt import CachePolicy, Optimizer, RecorderPolicy, Settings

    dsn, max_bytes, sql = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    page = os.sysconf("SC_PAGE_SIZE")

    def rss():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * page

    settings = Settings(
        cache=CachePolicy(max_bytes=max_bytes, max_entries=10_000_000),
        recorder=RecorderPolicy(enabled=False),
    )
    with Optimizer(dsn, settings=settings) as optimizer:
        for i in range(200):  # warm psycopg, the analysis and the prepared statement
            optimizer.query(sql, [-i, -i, -i])
        gc.collect()
        before = rss()
        i = 0
        while True:
            optimizer.query(sql, [i, i, i], use_cache=True)
            i += 1
            stats = optimizer.cache.stats()
            if stats["evictions"] > stats["entries"] // 4 and i % 1000 == 0:
                break
        gc.collect()
        after = rss()
        print(json.dumps({"growth": after - before, "entries": stats["entries"], "calls": i}))
    """
)


SHAPES = {
    "one small row": "SELECT %s::int AS id, 'customer ' || %s::text AS name, %s::int * 3 AS total",
    "25 rows of text and numbers": (
        "SELECT g AS id, 'line ' || g || ' of order ' || %s::int AS label, g * %s::numeric AS amount"
        " FROM generate_series(1, 25) g WHERE %s::int IS NOT NULL"
    ),
}


@pytest.mark.parametrize("sql", SHAPES.values(), ids=SHAPES.keys())
def test_resident_memory_grows_by_about_max_bytes_when_the_cache_is_full(dsn: str, sql: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, dsn, str(MAX_BYTES), sql],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    measured = json.loads(child.stdout)
    ratio = measured["growth"] / MAX_BYTES
    assert 0.8 <= ratio <= 1.2, f"resident memory grew {ratio:.2f}x max_bytes ({measured})"
    print(f"resident memory growth {ratio:.2f}x max_bytes: {measured}")
