"""Cache backends that keep results outside this process (imported only when used).

:class:`~queryopt.cache.backends.redis.RedisBackend` needs the ``redis`` package:
``pip install 'queryopt[redis]'``.
"""
