"""Slow-query recording: the record, the queue and its background writer, plan capture, the table.

:class:`SlowQueryRecorder` (``queue``) never blocks the application: it queues
:class:`SlowQuery` records (``record``) and a thread writes them, with plans
(``plan_capture``), into ``<schema>.slow_queries`` (``table``).
"""

from queryopt.recorder.queue import SlowQueryRecorder
from queryopt.recorder.record import SlowQuery
from queryopt.recorder.table import SlowQueryTable, prune

__all__ = ["SlowQuery", "SlowQueryRecorder", "SlowQueryTable", "prune"]
