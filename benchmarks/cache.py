"""The cache's hit path against its peers and its floor, in-process (no database).

Run: ``python -m benchmarks.cache [--quick]``. Cases, interleaved in one run:
a plain dict lookup with a monotonic-clock expiry check (the floor), dogpile.cache's
memory region ``get`` (a peer), and queryopt's ``ResultCache.get`` with its TTL and
table-version checks. The full ``optimize_query`` hit, key building included, is in
the hot-path benchmark. Target: a queryopt hit within 1 µs.
"""

from __future__ import annotations

import argparse
import time

from dogpile.cache import make_region

from benchmarks._harness import Case, format_seconds, measure, print_table
from queryopt.cache import ResultCache, canonical_params
from queryopt.result import QueryResult

ROWS = QueryResult(("id", "name", "balance"), ((42, "account 42", 420),), 1)
SQL = "SELECT id, name, balance FROM accounts WHERE id = %s"


def run(quick: bool = False) -> list[dict[str, object]]:
    rounds, min_time = (3, 0.05) if quick else (9, 0.3)
    scope = ("server", "db", "role")
    key = ((scope, SQL), canonical_params([42]))

    floor: dict[object, tuple[QueryResult, float]] = {key: (ROWS, time.monotonic() + 3600)}
    monotonic = time.monotonic

    def dict_with_expiry() -> object:
        entry = floor.get(key)
        if entry is not None and entry[1] > monotonic():
            return entry[0]
        return None

    region = make_region().configure("dogpile.cache.memory", expiration_time=3600)
    region.set(str(key), ROWS)
    dogpile_key = str(key)

    def dogpile_get() -> object:
        return region.get(dogpile_key)

    cache = ResultCache()
    version_keys = ResultCache.version_keys(scope, ["accounts"])
    cache.get_or_execute(key, version_keys, lambda: ROWS)

    def queryopt_get() -> object:
        return cache.get(key, version_keys)

    def queryopt_key_and_get() -> object:
        return cache.get(((scope, SQL), canonical_params([42])), version_keys)

    assert dict_with_expiry() is ROWS
    assert queryopt_get() is ROWS
    assert dogpile_get() == ROWS
    cases = [
        Case("dict + expiry check (floor)", dict_with_expiry),
        Case("dogpile.cache memory region get", dogpile_get),
        Case("queryopt ResultCache.get", queryopt_get),
        Case("queryopt key + ResultCache.get", queryopt_key_and_get),
    ]
    measure(cases, rounds=rounds, min_time=min_time)
    floor_time = cases[0].median
    rows: list[dict[str, object]] = []
    for case in cases:
        is_queryopt = case.name.startswith("queryopt")
        rows.append(
            {
                "case": case.name,
                "median": format_seconds(case.median),
                "spread": f"±{case.spread * 100:.1f}%",
                "vs floor": f"{case.median / floor_time:.2f}x",
                "target": "≤ 1 µs" if is_queryopt else ("floor" if case is cases[0] else "peer"),
                "met": (case.median <= 1e-6) if is_queryopt else None,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = parser.parse_args()
    print_table("cache hit path", run(quick=args.quick))


if __name__ == "__main__":
    main()
