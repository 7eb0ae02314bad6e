"""Log lines that stay bounded and carry no client text, whatever fails.

A defect's traceback used to be logged with its exception's message, and messages quote
what they failed on: one crash logged a 3 MB string from a request (issue 26.5), which
could as well have been a patient's data. So:

- `defect_summary` gives an exception's type and where it was raised (file, line,
  function, the source line), never its message or its arguments;
- `BoundedFormatter` cuts any record longer than MAX_RECORD_CHARS, as a last guard for
  every logger of the process (our own, the libraries', gunicorn's).
"""

from __future__ import annotations

import logging
import traceback

MAX_RECORD_CHARS = 8000


def defect_summary(error: BaseException) -> str:
    frames = traceback.format_list(traceback.extract_tb(error.__traceback__))
    return f"{type(error).__module__}.{type(error).__qualname__} (message not logged)\n" + \
        "".join(frames).rstrip()


class BoundedFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if len(text) <= MAX_RECORD_CHARS:
            return text
        return f"{text[:MAX_RECORD_CHARS]}... [{len(text) - MAX_RECORD_CHARS} characters cut]"


def bound_all_handlers(root: logging.Logger | None = None) -> None:
    """Give every handler of the root logger (and of loggers with their own handlers,
    such as gunicorn's) a bounded formatter with the format it had."""
    root = root or logging.getLogger()
    loggers = [root, *(logger for logger in logging.Logger.manager.loggerDict.values()
                       if isinstance(logger, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if not isinstance(handler.formatter, BoundedFormatter):
                current = handler.formatter or logging.Formatter()
                bounded = BoundedFormatter(current._fmt, current.datefmt)  # noqa: SLF001
                handler.setFormatter(bounded)
