"""Which function calls keep a query's result cacheable.

The rule, in order:

1. A name on a volatile list is never cacheable: *time-dependent* functions
   (``now()``, ``current_date``, ``clock_timestamp()``, …), *volatile* ones
   (``random()``, ``nextval()``, ``pg_sleep()``, advisory locks, …) and
   *session-dependent* ones (``current_setting()``, ``pg_backend_pid()``, …),
   whose result differs between connections that share one result cache.
2. A call sqlglot parses into a typed node (``exp.Sum``, ``exp.Lower``, …) is a
   PostgreSQL built-in; apart from the typed nodes listed in rule 1 these are
   immutable or stable, so they are fine.
3. A call sqlglot leaves as ``exp.Anonymous`` is fine when its name is on
   :data:`BUILTIN_STABLE_FUNCTIONS`, a list of PostgreSQL built-ins that are
   immutable or stable in every overload (a database test checks the list
   against ``pg_proc``).
4. Anything else — a user-defined function, an extension's function, any
   schema-qualified call outside ``pg_catalog`` — is *unclassified*: queryopt
   cannot know its volatility, so the query is not cacheable until the caller
   names the function in ``CachePolicy.stable_functions``. Such a call may also
   write, so the statement is not ``read_only`` either.

Stable functions whose result depends only on session settings such as
``TimeZone`` or ``DateStyle`` (``to_char``, ``date_trunc`` on ``timestamptz``)
count as cacheable: queryopt assumes one application runs with consistent
settings.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "BUILTIN_STABLE_FUNCTIONS",
    "SESSION_DEPENDENT_FUNCTIONS",
    "SIDE_EFFECT_FUNCTIONS",
    "TIME_DEPENDENT_FUNCTIONS",
    "VOLATILE_FUNCTIONS",
    "Volatility",
    "classify_function",
    "has_side_effects",
    "unclassified_reason",
]


class Volatility(Enum):
    """How a function call affects caching."""

    SAFE = "safe"
    """Immutable or stable built-in: the result depends only on arguments and data."""
    TIME_DEPENDENT = "time-dependent"
    """The result changes as time passes (``now()``, ``current_date``)."""
    VOLATILE = "volatile"
    """A new result on every call, or a side effect (``random()``, ``nextval()``)."""
    SESSION_DEPENDENT = "session-dependent"
    """The result depends on the connection (``current_setting()``, ``pg_backend_pid()``)."""
    UNCLASSIFIED = "unclassified"
    """Unknown to queryopt: a user or extension function."""


TIME_DEPENDENT_FUNCTIONS: frozenset[str] = frozenset(
    {
        "clock_timestamp",
        "current_date",
        "current_time",
        "current_timestamp",
        "localtime",
        "localtimestamp",
        "now",
        "statement_timestamp",
        "timeofday",
        "transaction_timestamp",
    }
)
"""Functions whose value moves with the clock; ``age(x)`` with one argument counts too."""

VOLATILE_FUNCTIONS: frozenset[str] = frozenset(
    {
        "currval",
        "dblink",
        "dblink_exec",
        "dblink_get_result",
        "dblink_send_query",
        "gen_random_uuid",
        "lastval",
        "lo_create",
        "lo_creat",
        "lo_export",
        "lo_from_bytea",
        "lo_get",
        "lo_import",
        "lo_put",
        "lo_unlink",
        "nextval",
        "pg_cancel_backend",
        "pg_current_snapshot",
        "pg_current_xact_id",
        "pg_current_xact_id_if_assigned",
        "pg_notify",
        "pg_reload_conf",
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
        "pg_terminate_backend",
        "random",
        "random_normal",
        "set_config",
        "setseed",
        "setval",
        "txid_current",
        "txid_current_if_assigned",
        "txid_current_snapshot",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
    }
)
"""Functions with a new value per call or a side effect; the prefixes below add the advisory-lock family."""

_VOLATILE_PREFIXES = ("pg_advisory_", "pg_try_advisory_", "dblink_", "pg_stat_reset", "pg_logical_")

SESSION_DEPENDENT_FUNCTIONS: frozenset[str] = frozenset(
    {
        "current_query",
        "current_setting",
        "inet_client_addr",
        "inet_client_port",
        "inet_server_addr",
        "inet_server_port",
        "pg_backend_pid",
        "pg_conf_load_time",
        "pg_my_temp_schema",
        "pg_postmaster_start_time",
        "pg_trigger_depth",
    }
)
"""Functions whose value differs between connections of one application."""

SIDE_EFFECT_FUNCTIONS: frozenset[str] = frozenset(
    {
        "dblink",
        "dblink_exec",
        "dblink_send_query",
        "lo_create",
        "lo_creat",
        "lo_from_bytea",
        "lo_import",
        "lo_put",
        "lo_unlink",
        "nextval",
        "pg_cancel_backend",
        "pg_notify",
        "pg_reload_conf",
        "pg_terminate_backend",
        "set_config",
        "setseed",
        "setval",
    }
)
"""Functions that change state, so a statement calling them is not read-only (plus the volatile prefixes)."""

BUILTIN_STABLE_FUNCTIONS: frozenset[str] = frozenset(
    {
        # strings and bytes
        "bit_count", "btrim", "char_length", "concat", "concat_ws", "convert_from", "convert_to", "decode",
        "encode", "format", "format_type", "get_bit", "get_byte", "initcap", "is_normalized", "left", "length",
        "lower", "lpad", "ltrim", "md5", "octet_length", "parse_ident", "position", "quote_ident",
        "quote_literal", "quote_nullable", "regexp_count", "regexp_instr", "regexp_like", "regexp_match",
        "regexp_matches", "regexp_replace", "regexp_split_to_array", "regexp_split_to_table", "regexp_substr",
        "repeat", "replace", "reverse", "right", "rpad", "rtrim", "set_bit", "set_byte", "sha224", "sha256",
        "sha384", "sha512", "split_part", "starts_with", "string_to_array", "string_to_table", "strpos",
        "substr", "substring", "to_ascii", "to_hex", "translate", "unistr", "upper",
        # numbers
        "abs", "acosd", "asind", "atan2d", "atand", "cbrt", "ceil", "ceiling", "cosd", "cotd", "degrees", "div",
        "exp", "factorial", "floor", "gcd", "lcm", "ln", "log", "log10", "min_scale", "mod", "num_nonnulls",
        "num_nulls", "pi", "power", "radians", "round", "scale", "sign", "sind", "sqrt", "tand", "trim_scale",
        "trunc", "width_bucket",
        # dates and times (age with one argument is time-dependent: see classify_function)
        "age", "date_bin", "date_part", "date_trunc", "isfinite", "justify_days", "justify_hours",
        "justify_interval", "make_date", "make_interval", "make_time", "make_timestamp", "make_timestamptz",
        "timezone", "to_char", "to_date", "to_number", "to_timestamp",
        # json
        "array_to_json", "json_agg", "json_array_elements", "json_array_elements_text", "json_array_length",
        "json_build_array", "json_build_object", "json_each", "json_each_text", "json_extract_path",
        "json_extract_path_text", "json_object_agg", "json_object_keys", "json_populate_record",
        "json_populate_recordset", "json_strip_nulls", "json_to_record", "json_to_recordset", "json_typeof",
        "jsonb_agg", "jsonb_array_elements", "jsonb_array_elements_text", "jsonb_array_length",
        "jsonb_build_array", "jsonb_build_object", "jsonb_each", "jsonb_each_text", "jsonb_extract_path",
        "jsonb_extract_path_text", "jsonb_insert", "jsonb_object", "jsonb_object_agg", "jsonb_object_keys",
        "jsonb_path_exists", "jsonb_path_match", "jsonb_path_query", "jsonb_path_query_array",
        "jsonb_path_query_first", "jsonb_populate_record", "jsonb_populate_recordset", "jsonb_pretty",
        "jsonb_set", "jsonb_set_lax", "jsonb_strip_nulls", "jsonb_to_record", "jsonb_to_recordset",
        "jsonb_typeof", "row_to_json", "to_json", "to_jsonb",
        # arrays and ranges
        "array_agg", "array_append", "array_cat", "array_dims", "array_fill", "array_length", "array_lower",
        "array_ndims", "array_position", "array_positions", "array_prepend", "array_remove", "array_replace",
        "array_to_string", "array_upper", "cardinality", "daterange", "generate_series", "generate_subscripts",
        "int4range", "int8range", "isempty", "lower_inc", "lower_inf", "numrange", "range_agg",
        "range_intersect_agg", "range_merge", "trim_array", "tsrange", "tstzrange", "unnest", "upper_inc",
        "upper_inf",
        # aggregates and window functions
        "avg", "bit_and", "bit_or", "bool_and", "bool_or", "corr", "count", "covar_pop", "covar_samp",
        "cume_dist", "dense_rank", "every", "first_value", "lag", "last_value", "lead", "max", "min", "mode",
        "nth_value", "ntile", "percent_rank", "percentile_cont", "percentile_disc", "rank", "regr_avgx",
        "regr_avgy", "regr_count", "regr_intercept", "regr_r2", "regr_slope", "regr_sxx", "regr_sxy",
        "regr_syy", "row_number", "stddev", "stddev_pop", "stddev_samp", "string_agg", "sum", "var_pop",
        "var_samp", "variance", "xmlagg",
        # text search
        "array_to_tsvector", "numnode", "phraseto_tsquery", "plainto_tsquery", "querytree", "setweight",
        "strip", "to_tsquery", "to_tsvector", "ts_delete", "ts_filter", "ts_headline", "ts_rank", "ts_rank_cd",
        "tsvector_to_array", "websearch_to_tsquery",
        # network addresses
        "abbrev", "broadcast", "family", "host", "hostmask", "inet_merge", "inet_same_family", "masklen",
        "netmask", "network", "set_masklen",
        # type and size information
        "pg_column_size", "pg_size_pretty", "pg_typeof",
    }
)  # fmt: skip
"""PostgreSQL built-ins (``pg_catalog``) that are immutable or stable in every overload."""


def classify_function(name: str, *, schema: str | None = None, argument_count: int = 0) -> Volatility:
    """Classify a call by its folded name, its schema qualifier and its number of arguments.

    >>> classify_function("now"), classify_function("jsonb_build_object")
    (<Volatility.TIME_DEPENDENT: 'time-dependent'>, <Volatility.SAFE: 'safe'>)
    >>> classify_function("age", argument_count=1), classify_function("age", argument_count=2)
    (<Volatility.TIME_DEPENDENT: 'time-dependent'>, <Volatility.SAFE: 'safe'>)
    >>> classify_function("lower", schema="billing")
    <Volatility.UNCLASSIFIED: 'unclassified'>
    """
    lowered = name.lower()
    if lowered in TIME_DEPENDENT_FUNCTIONS or (lowered == "age" and argument_count == 1):
        return Volatility.TIME_DEPENDENT
    if lowered in VOLATILE_FUNCTIONS or lowered.startswith(_VOLATILE_PREFIXES):
        return Volatility.VOLATILE
    if lowered in SESSION_DEPENDENT_FUNCTIONS:
        return Volatility.SESSION_DEPENDENT
    if schema not in (None, "pg_catalog"):
        return Volatility.UNCLASSIFIED  # a function in an application schema may share a built-in's name
    if lowered in BUILTIN_STABLE_FUNCTIONS:
        return Volatility.SAFE
    return Volatility.UNCLASSIFIED


def has_side_effects(name: str) -> bool:
    """True for functions that change state (sequences, settings, locks, notifications)."""
    lowered = name.lower()
    return lowered in SIDE_EFFECT_FUNCTIONS or lowered.startswith(_VOLATILE_PREFIXES)


def unclassified_reason(name: str) -> str:
    """The uncacheable reason recorded for a function of unknown volatility."""
    return f"unclassified function {name}() (volatility unknown; allow it with CachePolicy.stable_functions)"
