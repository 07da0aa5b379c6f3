"""Query results and table versions in Redis, shared by every process and host (``pip install 'queryopt[redis]'``).

Keys of one namespace (the braces are a Redis Cluster hash tag: a namespace
lives in one slot, so one ``MGET`` reads an entry together with its versions)::

    queryopt:v1:{<namespace>}:epoch      a random token; a Redis that lost its data gets a new one
    queryopt:v1:{<namespace>}:t:<hash>   one table's version in one scope, INCR-ed after a write commits
    queryopt:v1:{<namespace>}:e:<hash>   an entry: b"<epoch>,<version>,…\\n" + the encoded result (SET … PX ttl)
    queryopt:v1:{<namespace>}:l:<hash>   a miss's single-flight lock (SET NX PX), deleted by its owner

``v1`` is the entry format (:data:`queryopt.cache.backends.codec.FORMAT_VERSION`); the
namespace separates applications and schema versions; hashes are BLAKE2b of the
cache key (database, role, search_path and session settings, SQL text, typed parameters).

**Never stale.** An entry carries the versions snapshotted *before* its query
ran, and is stored by a Lua script only if they are still current; a read
fetches the entry and the current versions in one ``MGET`` and serves it only
if they match. So once a writer's bump has returned, no process serves a result
read before the write — without any per-process generation counter to poll.
Versions restart at zero when Redis loses its data; the epoch token, part of
every snapshot, changes then, so no old snapshot matches again.

**Unreachable Redis** never fails a query: reads miss, stores are skipped, the
failure is counted and logged at most once per ``log_interval``, Redis is left
alone for ``retry_interval`` seconds, and bumps made meanwhile are kept and
replayed before this process reads from Redis again. (Another process that can
still reach Redis may serve entries of those tables until the replay or their
TTL: use a TTL you can live with as the bound of such a partition.) Run Redis
without persistence (``--save '' --appendonly no``): a restore from a snapshot
would bring back entries together with versions older than the writes after it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import threading
import time
from collections.abc import Hashable, Sequence
from hashlib import blake2b
from typing import TYPE_CHECKING, Any, Final

from queryopt.cache.api import Begun, CacheEntry, SharedBackend, VersionKey
from queryopt.cache.backends.codec import FORMAT_VERSION, Unencodable, decode, encode
from queryopt.errors import CacheError, ConfigurationError
from queryopt.result import QueryResult

__all__ = ["Begun", "RedisBackend"]

logger = logging.getLogger("queryopt")

_INSTALL = "the Redis cache backend needs the redis package: pip install 'queryopt[redis]'"
_MAX_NAMES = 4096
_NEWLINE: Final = b"\n"[0]
Command = tuple[Any, ...]

# Store an entry only if the versions it was read under are still current; release the caller's lock.
_STORE_SCRIPT: Final = """
local current = {}
for i = 3, #KEYS do
  current[#current + 1] = redis.call('GET', KEYS[i]) or '0'
end
local stored = 0
if ARGV[2] ~= '' and table.concat(current, ',') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  stored = 1
end
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) == ARGV[4] then
  redis.call('DEL', KEYS[2])
end
return stored
"""
_RELEASE_SCRIPT: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _import_redis() -> Any:
    try:
        import redis  # an optional extra: imported only when the backend is used
    except ImportError as exc:
        raise CacheError(_INSTALL) from exc
    return redis


def _tag(values: Sequence[bytes | None]) -> bytes:
    return b",".join([b"0" if value is None else value for value in values])


def _digest(data: bytes) -> str:
    return blake2b(data, digest_size=16).hexdigest()


def _check_seconds(name: str, value: float, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"RedisBackend.{name} must be a number of seconds >= 0, got {value!r}", setting=name)
    if value == 0 and not allow_zero:
        raise ConfigurationError(f"RedisBackend.{name} must be > 0 seconds, got {value!r}", setting=name)


class RedisBackend:
    """Results and table versions in Redis under ``namespace`` (see the module docstring).

    ``url`` is any URL the ``redis`` package accepts (``redis://host:6379/0``,
    ``rediss://…``, ``unix:///run/redis.sock``). Timeouts are short on purpose: a
    cache that waits seconds for its server is worse than no cache. ``lock_ttl``
    bounds how long a miss holds the cross-process single-flight lock (0 turns the
    lock off) and ``lock_wait`` how long other processes wait for its result before
    running the query themselves.
    """

    shares_versions: Final = True

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        namespace: str,
        socket_timeout: float = 0.5,
        connect_timeout: float = 0.5,
        retry_interval: float = 1.0,
        log_interval: float = 60.0,
        compress_above: int = 1024,
        max_value_bytes: int = 8 * 1024 * 1024,
        lock_ttl: float = 10.0,
        lock_wait: float = 10.0,
    ) -> None:
        redis = _import_redis()
        if not isinstance(namespace, str) or not namespace or any(ch in namespace for ch in "{}\r\n"):
            raise ConfigurationError(
                f"RedisBackend.namespace must be a non-empty name without braces or line breaks, got {namespace!r}",
                setting="namespace",
            )
        for name, value in (("socket_timeout", socket_timeout), ("connect_timeout", connect_timeout)):
            _check_seconds(name, value)
        _check_seconds("retry_interval", retry_interval, allow_zero=True)
        _check_seconds("log_interval", log_interval, allow_zero=True)
        _check_seconds("lock_ttl", lock_ttl, allow_zero=True)
        _check_seconds("lock_wait", lock_wait, allow_zero=True)
        for name, count in (("compress_above", compress_above), ("max_value_bytes", max_value_bytes)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ConfigurationError(
                    f"RedisBackend.{name} must be a whole number >= 0, got {count!r}", setting=name
                )
        self.url = url
        self.namespace = namespace
        self.retry_interval = retry_interval
        self.log_interval = log_interval
        self.compress_above = compress_above
        self.max_value_bytes = max_value_bytes
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait
        self._options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            "health_check_interval": 0,
        }
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        from redis.backoff import NoBackoff  # optional extra
        from redis.retry import Retry

        try:
            # No retries inside redis-py: a failure opens our own circuit instead of stalling the query.
            self._client: Any = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **self._options)
        except ValueError as exc:
            raise ConfigurationError(f"RedisBackend.url {url!r}: {exc}", setting="url") from exc
        self._pool = self._client.connection_pool
        self._async_client: Any = None  # redis.asyncio.Redis: its stubs leave commands untyped
        self._async_loop: asyncio.AbstractEventLoop | None = None
        prefix = f"queryopt:v{FORMAT_VERSION}:{{{namespace}}}:"
        self._prefix = prefix
        self._epoch = prefix + "epoch"
        self._version_names: dict[tuple[VersionKey, ...], tuple[str, ...]] = {}
        self._prefix_digests: dict[Hashable, bytes] = {}
        self._pending: set[Command] = set()
        """Bumps (and clears) that could not reach Redis, replayed before this process reads it again."""
        self._pending_lock = threading.Lock()
        self._down_until = 0.0
        self._last_log = -math.inf
        self._failures_unlogged = 0
        self._counters = {
            "stale": 0,
            "unencodable": 0,
            "oversize": 0,
            "corrupt": 0,
            "redis_errors": 0,
            "redis_skipped": 0,
        }

    # -- names -------------------------------------------------------------------------------------------

    def _names(self, version_keys: tuple[VersionKey, ...]) -> tuple[str, ...]:
        """The epoch and the version keys' Redis names, remembered per tuple (one per prepared call)."""
        names = self._version_names.get(version_keys)
        if names is None:
            names = (self._epoch, *(self._version_name(key) for key in version_keys))
            if len(self._version_names) >= _MAX_NAMES:
                self._version_names.clear()
            self._version_names[version_keys] = names
        return names

    def _version_name(self, key: VersionKey) -> str:
        return f"{self._prefix}t:{_digest(repr(key).encode('utf-8', 'surrogatepass'))}"

    def _entry_digest(self, key: Hashable) -> str:
        if type(key) is tuple and len(key) == 2:
            # The optimizer's (prefix, params): hash the long prefix (scope and SQL text) once.
            prefix, params = key
            head = self._prefix_digests.get(prefix)
            if head is None:
                head = blake2b(repr(prefix).encode("utf-8", "surrogatepass"), digest_size=16).digest()
                if len(self._prefix_digests) >= _MAX_NAMES:
                    self._prefix_digests.clear()
                self._prefix_digests[prefix] = head
            return _digest(head + repr(params).encode("utf-8", "surrogatepass"))
        return _digest(repr(key).encode("utf-8", "surrogatepass"))

    def entry_name(self, key: Hashable) -> str:
        """The Redis key of the entry for ``key``."""
        return f"{self._prefix}e:{self._entry_digest(key)}"

    def _lock_name(self, entry: str) -> str:
        return entry.replace(":e:", ":l:", 1)

    # -- availability ------------------------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> None:
        """Leave Redis alone for ``retry_interval``; log at most once per ``log_interval``."""
        now = time.monotonic()
        self._down_until = now + self.retry_interval
        self._counters["redis_errors"] += 1
        self._failures_unlogged += 1
        if now - self._last_log >= self.log_interval:
            logger.warning(
                "queryopt: Redis cache at %s unusable (%s: %s); running queries without it, retrying every %gs"
                " (%d failure(s) since the last message)",
                self.url,
                type(exc).__name__,
                exc,
                self.retry_interval,
                self._failures_unlogged,
            )
            self._last_log = now
            self._failures_unlogged = 0

    def _skip(self) -> bool:
        """True while Redis is left alone after a failure."""
        if self._down_until > time.monotonic():
            self._counters["redis_skipped"] += 1
            return True
        return False

    def _replay_commands(self) -> list[Command]:
        with self._pending_lock:
            return sorted(self._pending)

    def _replayed(self, commands: list[Command]) -> None:
        with self._pending_lock:
            self._pending.difference_update(commands)
        if self._down_until:
            logger.info("queryopt: Redis cache at %s reachable again", self.url)
            self._down_until = 0.0

    def _remember(self, commands: Sequence[Command]) -> None:
        with self._pending_lock:
            self._pending.update(commands)

    def _ready(self) -> bool:
        """Whether to talk to Redis now; replays pending bumps first (sync)."""
        if self._skip():
            return False
        commands = self._replay_commands()
        if commands:
            try:
                with self._client.pipeline(transaction=True) as pipe:
                    for command in commands:
                        pipe.execute_command(*command)
                    pipe.execute()
            except self._errors as exc:
                self._failed(exc)
                return False
        self._replayed(commands)
        return True

    async def _aready(self) -> bool:
        """Whether to talk to Redis now; replays pending bumps first (asyncio)."""
        if self._skip():
            return False
        commands = self._replay_commands()
        if commands:
            try:
                async with self._aclient().pipeline(transaction=True) as pipe:
                    for command in commands:
                        pipe.execute_command(*command)
                    await pipe.execute()
            except self._errors as exc:
                self._failed(exc)
                return False
        self._replayed(commands)
        return True

    def _run(self, commands: Sequence[Command], *, atomic: bool = False) -> list[Any] | None:
        """Send ``commands`` in one round trip; None when Redis is unusable (counted, never raised)."""
        if (self._down_until or self._pending) and not self._ready():
            return None
        try:
            if len(commands) == 1:
                return [self._client.execute_command(*commands[0])]
            with self._client.pipeline(transaction=atomic) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                return list(pipe.execute())
        except self._errors as exc:
            self._failed(exc)
            return None

    async def _arun(self, commands: Sequence[Command], *, atomic: bool = False) -> list[Any] | None:
        """:meth:`_run` on the event loop's own client."""
        if (self._down_until or self._pending) and not await self._aready():
            return None
        try:
            client = self._aclient()
            if len(commands) == 1:
                return [await client.execute_command(*commands[0])]
            async with client.pipeline(transaction=atomic) as pipe:
                for command in commands:
                    pipe.execute_command(*command)
                return list(await pipe.execute())
        except self._errors as exc:
            self._failed(exc)
            return None

    def _aclient(self) -> Any:
        """The asyncio client of the running loop (a client's connections belong to one loop)."""
        loop = asyncio.get_running_loop()
        client = self._async_client
        if client is None or self._async_loop is not loop:
            import redis.asyncio  # optional extra
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            client = redis.asyncio.Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), **self._options)
            self._async_client, self._async_loop = client, loop
        return client

    # -- reading -----------------------------------------------------------------------------------------

    def _current(self, entry: str, payload: bytes | None, tag: bytes) -> QueryResult | None:
        """The result in ``payload`` if it was stored under ``tag``."""
        if payload is None:
            return None
        size = len(tag)
        if len(payload) <= size or payload[size] != _NEWLINE or not payload.startswith(tag):
            self._counters["stale"] += 1
            return None
        try:
            columns, rows, rowcount = decode(payload, size + 1)
        except (ValueError, TypeError, KeyError, IndexError, LookupError) as exc:
            self._counters["corrupt"] += 1
            logger.warning("queryopt: unreadable Redis cache entry %s (%s); ignored", entry, exc)
            return None
        return QueryResult(columns, rows, rowcount)

    def fetch(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> QueryResult | None:
        """The entry for ``key`` if it was stored under the current versions: one ``MGET`` (the hit path)."""
        if (self._down_until or self._pending) and not self._ready():
            return None
        names = self._version_names.get(version_keys) or self._names(version_keys)
        entry = self.entry_name(key)
        pool = self._pool
        try:
            # Straight on a pooled connection: redis-py's command wrapper (retries, observability) costs ~8 µs.
            conn = pool.get_connection()
            try:
                conn.send_command("MGET", entry, *names)
                values = conn.read_response()
            except BaseException:
                conn.disconnect()  # a half-read reply must never reach the next caller
                raise
            finally:
                pool.release(conn)
        except self._errors as exc:
            self._failed(exc)
            return None
        return self._current(entry, values[0], _tag(values[1:]))

    async def afetch(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> QueryResult | None:
        """:meth:`fetch` for coroutines."""
        names = self._version_names.get(version_keys) or self._names(version_keys)
        entry = self.entry_name(key)
        replies = await self._arun([("MGET", entry, *names)])
        if replies is None:
            return None
        values = replies[0]
        return self._current(entry, values[0], _tag(values[1:]))

    # -- a miss: lock, snapshot, wait, store ------------------------------------------------------------

    def _begin_commands(self, entry: str, names: tuple[str, ...], token: str) -> list[Command]:
        commands: list[Command] = [("SET", self._epoch, secrets.token_hex(8), "NX"), ("MGET", *names)]
        if token:
            commands.insert(0, ("SET", self._lock_name(entry), token, "NX", "PX", max(1, round(self.lock_ttl * 1000))))
        return commands

    def _begun(self, replies: list[Any] | None, token: str) -> Begun | None:
        if replies is None:
            return None
        tag = _tag(replies[-1])
        if not token:
            return Begun(True, "", tag)
        return Begun(True, token, tag) if replies[0] else Begun(False, "", tag)

    def begin(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> Begun | None:
        """Try the single-flight lock and snapshot the versions in one round trip; None when Redis is unusable."""
        token = secrets.token_hex(8) if self.lock_ttl > 0 else ""
        commands = self._begin_commands(self.entry_name(key), self._names(version_keys), token)
        return self._begun(self._run(commands), token)

    async def abegin(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> Begun | None:
        """:meth:`begin` for coroutines."""
        token = secrets.token_hex(8) if self.lock_ttl > 0 else ""
        commands = self._begin_commands(self.entry_name(key), self._names(version_keys), token)
        return self._begun(await self._arun(commands), token)

    def snapshot(self, version_keys: tuple[VersionKey, ...]) -> bytes | None:
        """The epoch and versions to store a result under, read before its query runs; None when unusable."""
        replies = self._run([("SET", self._epoch, secrets.token_hex(8), "NX"), ("MGET", *self._names(version_keys))])
        return None if replies is None else _tag(replies[-1])

    def _poll_commands(self, entry: str, names: tuple[str, ...]) -> list[Command]:
        return [("MGET", entry, self._lock_name(entry), *names)]

    def _polled(self, entry: str, replies: list[Any] | None) -> tuple[QueryResult | None, bool] | None:
        if replies is None:
            return None
        values = replies[0]
        return self._current(entry, values[0], _tag(values[2:])), values[1] is not None

    def poll(self, key: Hashable, version_keys: tuple[VersionKey, ...]) -> tuple[QueryResult | None, bool] | None:
        """The current entry (if any) and whether another process still holds the lock; None when unusable."""
        entry = self.entry_name(key)
        return self._polled(entry, self._run(self._poll_commands(entry, self._names(version_keys))))

    async def apoll(
        self, key: Hashable, version_keys: tuple[VersionKey, ...]
    ) -> tuple[QueryResult | None, bool] | None:
        """:meth:`poll` for coroutines."""
        entry = self.entry_name(key)
        return self._polled(entry, await self._arun(self._poll_commands(entry, self._names(version_keys))))

    def _payload(self, result: QueryResult, tag: bytes) -> bytes:
        """``tag`` and the encoded result; b'' when it cannot or should not be stored (counted)."""
        try:
            body = encode(result.columns, result.rows, result.rowcount, compress_above=self.compress_above)
        except Unencodable as exc:
            self._counters["unencodable"] += 1
            logger.debug("queryopt: result not stored in Redis: %s", exc)
            return b""
        if len(body) + len(tag) + 1 > self.max_value_bytes:
            self._counters["oversize"] += 1
            return b""
        return b"%b\n%b" % (tag, body)

    def _store_commands(
        self, key: Hashable, version_keys: tuple[VersionKey, ...], payload: bytes, tag: bytes, ttl: float, token: str
    ) -> list[Command]:
        entry = self.entry_name(key)
        names = self._names(version_keys)
        milliseconds = max(1, round(ttl * 1000))
        keys = (entry, self._lock_name(entry), *names)
        return [("EVAL", _STORE_SCRIPT, len(keys), *keys, tag, payload, milliseconds, token)]

    def store(
        self,
        key: Hashable,
        version_keys: tuple[VersionKey, ...],
        result: QueryResult,
        *,
        tag: bytes,
        ttl: float,
        token: str = "",
    ) -> bool:
        """Store ``result`` if ``tag`` is still current, and release ``token``'s lock: one round trip."""
        payload = self._payload(result, tag)
        if not payload and not token:
            return False
        replies = self._run(self._store_commands(key, version_keys, payload, tag, ttl, token))
        return bool(replies and replies[0])

    async def astore(
        self,
        key: Hashable,
        version_keys: tuple[VersionKey, ...],
        result: QueryResult,
        *,
        tag: bytes,
        ttl: float,
        token: str = "",
    ) -> bool:
        """:meth:`store` for coroutines."""
        payload = self._payload(result, tag)
        if not payload and not token:
            return False
        replies = await self._arun(self._store_commands(key, version_keys, payload, tag, ttl, token))
        return bool(replies and replies[0])

    def _release_commands(self, key: Hashable, token: str) -> list[Command]:
        return [("EVAL", _RELEASE_SCRIPT, 1, self._lock_name(self.entry_name(key)), token)]

    def release(self, key: Hashable, token: str) -> None:
        """Drop the single-flight lock if ``token`` still owns it (the query failed)."""
        self._run(self._release_commands(key, token))

    async def arelease(self, key: Hashable, token: str) -> None:
        """:meth:`release` for coroutines."""
        await self._arun(self._release_commands(key, token))

    # -- invalidation ------------------------------------------------------------------------------------

    def _bump_commands(self, version_keys: Sequence[VersionKey]) -> list[Command]:
        return [("INCR", self._version_name(key)) for key in version_keys]

    def bump(self, version_keys: Sequence[VersionKey]) -> None:
        """INCR the versions atomically (MULTI/EXEC); kept for replay when Redis is unreachable."""
        commands = self._bump_commands(version_keys)
        if commands and self._run(commands, atomic=True) is None:
            self._remember(commands)

    async def abump(self, version_keys: Sequence[VersionKey]) -> None:
        """:meth:`bump` for coroutines."""
        commands = self._bump_commands(version_keys)
        if commands and await self._arun(commands, atomic=True) is None:
            self._remember(commands)

    def clear(self) -> None:
        """Forget every entry of the namespace: a new epoch at once, then the keys themselves."""
        drop_epoch: Command = ("DEL", self._epoch)
        if self._run([drop_epoch]) is None:
            self._remember([drop_epoch])
            return
        try:
            batch: list[bytes] = []
            for name in self._client.scan_iter(match=self._prefix + "*", count=1000):
                batch.append(name)
                if len(batch) >= 500:
                    self._client.unlink(*batch)
                    batch = []
            if batch:
                self._client.unlink(*batch)
        except self._errors as exc:
            self._failed(exc)  # the new epoch already makes the rest unreadable

    # -- the dumb CacheBackend surface -------------------------------------------------------------------

    def get(self, key: Hashable) -> CacheEntry | None:
        """The stored entry whatever its versions (expiry is Redis's business)."""
        entry = self.entry_name(key)
        replies = self._run([("GET", entry)])
        payload = None if replies is None else replies[0]
        if payload is None:
            return None
        tag, _, _ = payload.partition(b"\n")
        result = self._current(entry, payload, tag)
        if result is None:
            return None
        return CacheEntry(result, math.inf, tuple(tag.split(b",")), -1, len(payload), False)

    def set(self, key: Hashable, entry: CacheEntry, ttl: float) -> None:
        """Store ``entry`` for ``ttl`` seconds, unconditionally."""
        tag = b",".join(part if isinstance(part, bytes) else str(part).encode() for part in entry.versions)
        payload = self._payload(entry.result, tag)
        if payload:
            self._run([("SET", self.entry_name(key), payload, "PX", max(1, round(ttl * 1000)))])

    def delete(self, key: Hashable) -> None:
        self._run([("DEL", self.entry_name(key))])

    def __len__(self) -> int:
        """Entries in the namespace (a SCAN: for statistics, not for hot paths)."""
        if (self._down_until or self._pending) and not self._ready():
            return 0
        try:
            return sum(1 for _ in self._client.scan_iter(match=self._prefix + "e:*", count=1000))
        except self._errors as exc:
            self._failed(exc)
            return 0

    # -- housekeeping ------------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """stale, unencodable, oversize, corrupt, redis_errors, redis_skipped, redis_pending."""
        return {**self._counters, "redis_pending": len(self._pending)}

    def close(self) -> None:
        """Close the connections of the synchronous client."""
        self._client.close()

    async def aclose(self) -> None:
        """Close the connections the running event loop's client opened."""
        client, loop = self._async_client, self._async_loop
        if client is not None and loop is asyncio.get_running_loop():
            self._async_client = self._async_loop = None
            await client.aclose()


if TYPE_CHECKING:

    def _implements_shared_backend(backend: RedisBackend) -> SharedBackend:
        return backend  # mypy --strict checks here that RedisBackend implements the whole protocol
