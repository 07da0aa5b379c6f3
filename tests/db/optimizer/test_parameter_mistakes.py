"""Parameters that cannot match the placeholders: a message that says so, not the server's "syntax error"."""

from __future__ import annotations

import pytest

from queryopt import ConfigurationError, Optimizer, QueryError, RecorderPolicy, Settings


@pytest.fixture
def optimizer(dsn: str) -> Optimizer:
    with Optimizer(settings=Settings(dsn=dsn, recorder=RecorderPolicy(enabled=False)), max_size=1) as optimizer:
        yield optimizer


@pytest.mark.parametrize("use_cache", [False, True])
def test_placeholders_without_parameters_name_the_mistake(optimizer: Optimizer, use_cache: bool) -> None:
    with pytest.raises(QueryError, match=r"1 placeholder\(s\) \(format style\) but no parameters were passed"):
        optimizer.query("SELECT %s::int", use_cache=use_cache)
    with pytest.raises(QueryError, match=r"2 placeholder\(s\) \(numeric style\)"):
        optimizer.query("SELECT $1::int + $2::int", use_cache=use_cache)
    assert optimizer.query("SELECT %s::int", [1], use_cache=use_cache) == [(1,)]  # the connection is fine


@pytest.mark.parametrize("use_cache", [False, True])
@pytest.mark.parametrize("params", [1, "1", 2.5])
def test_a_bare_value_instead_of_a_list_is_a_configuration_error(
    optimizer: Optimizer, use_cache: bool, params: object
) -> None:
    with pytest.raises(ConfigurationError, match=r"wrap a single value as \[value\]"):
        optimizer.query("SELECT %s::text", params, use_cache=use_cache)  # type: ignore[arg-type]


def test_in_a_transaction_too(optimizer: Optimizer) -> None:
    with pytest.raises(QueryError, match="no parameters were passed"), optimizer.transaction() as tx:
        tx.execute("SELECT %(id)s::int")
