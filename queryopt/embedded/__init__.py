"""Throwaway servers for the demo, the tests and the benchmarks: PostgreSQL and Redis on unix sockets.

Both run the machine's own binaries under start/stop code of ours (a parent-death
signal stops a server whose owner was killed).
"""

from queryopt.embedded.postgres import EmbeddedPostgres, find_bindir
from queryopt.embedded.redis import EmbeddedRedis, find_redis_server

__all__ = ["EmbeddedPostgres", "EmbeddedRedis", "find_bindir", "find_redis_server"]
