"""The analysis LRU: keyed by exact text, bounded, counted, thread-safe; failures are not cached."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from queryopt import AnalysisError, ConfigurationError
from queryopt.analysis import (
    DEFAULT_ANALYSIS_CACHE_SIZE,
    analysis_cache_info,
    analyze,
    analyze_uncached,
    clear_analysis_cache,
    set_analysis_cache_size,
)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_analysis_cache()
    yield
    set_analysis_cache_size(DEFAULT_ANALYSIS_CACHE_SIZE)
    clear_analysis_cache()


def _counts() -> tuple[int, int, int]:
    info = analysis_cache_info()
    return info["hits"], info["misses"], info["size"]


def test_default_bound() -> None:
    assert analysis_cache_info() == {"hits": 0, "misses": 0, "size": 0, "maxsize": DEFAULT_ANALYSIS_CACHE_SIZE}
    assert DEFAULT_ANALYSIS_CACHE_SIZE == 4096


def test_each_distinct_text_is_analysed_once() -> None:
    first = analyze("SELECT * FROM t WHERE id = %s")
    assert analyze("SELECT * FROM t WHERE id = %s") is first
    assert _counts() == (1, 1, 1)
    analyze("SELECT * FROM t WHERE id = %s ")  # the key is the exact text
    assert _counts() == (1, 2, 2)


def test_least_recently_used_entry_is_evicted_first() -> None:
    set_analysis_cache_size(2)
    a = analyze("SELECT 'a'")
    analyze("SELECT 'b'")
    assert analyze("SELECT 'a'") is a  # now the most recent
    analyze("SELECT 'c'")  # evicts b
    hits, misses, size = _counts()
    assert (hits, misses, size) == (1, 3, 2)
    assert analyze("SELECT 'a'") is a
    analyze("SELECT 'b'")
    assert _counts() == (2, 4, 2)


def test_size_stays_bounded() -> None:
    set_analysis_cache_size(5)
    for i in range(20):
        analyze(f"SELECT {i}")
    assert analysis_cache_info() == {"hits": 0, "misses": 20, "size": 5, "maxsize": 5}


def test_resizing_drops_entries_but_keeps_counts() -> None:
    analyze("SELECT 1")
    analyze("SELECT 1")
    set_analysis_cache_size(10)
    assert analysis_cache_info() == {"hits": 1, "misses": 1, "size": 0, "maxsize": 10}


def test_size_zero_disables_caching() -> None:
    set_analysis_cache_size(0)
    assert analyze("SELECT 1") is not analyze("SELECT 1")
    assert _counts() == (0, 2, 0)


@pytest.mark.parametrize("size", [-1, 1.5, "10", True, None])
def test_bad_size_is_refused(size: object) -> None:
    with pytest.raises(ConfigurationError, match="analysis cache size"):
        set_analysis_cache_size(size)  # type: ignore[arg-type]


def test_failures_are_not_cached() -> None:
    for _ in range(2):
        with pytest.raises(AnalysisError):
            analyze("SELEC 1")
    assert _counts() == (0, 2, 0)


def test_concurrent_use_gives_the_same_answers_as_sequential_use() -> None:
    set_analysis_cache_size(16)  # smaller than the working set: threads evict each other's entries
    texts = [f"SELECT a, b FROM t{i % 7} x JOIN u ON u.id = x.id WHERE x.k = {i}" for i in range(40)]
    expected = {text: (analyze_uncached(text).fingerprint, analyze_uncached(text).tables) for text in texts}
    failures: list[BaseException] = []
    calls_per_thread = 300

    def worker(offset: int) -> None:
        try:
            for n in range(calls_per_thread):
                text = texts[(n * 7 + offset) % len(texts)]
                analysis = analyze(text)
                assert (analysis.fingerprint, analysis.tables) == expected[text]
        except BaseException as error:  # report to the main thread
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    info = analysis_cache_info()
    assert info["size"] <= 16
    assert info["hits"] + info["misses"] == 8 * calls_per_thread
