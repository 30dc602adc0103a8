"""``print()`` from tasks, as whole lines.

In a worker process many task threads print at once, and sibling processes share the
same pipe. ``print`` writes the text and the newline separately and a pipe is
block-buffered, so lines would come out torn or late. Each thread's text is kept
until it ends a line, and every run of whole lines goes out in one ``write(2)``
(atomic on a pipe up to ``PIPE_BUF`` bytes), at once.
"""

from __future__ import annotations

import io
import os
import sys
import threading


class LineWriter(io.TextIOBase):
    def __init__(self, fd: int, encoding: str = "utf-8") -> None:
        self._fd = fd
        self._encoding = encoding
        self._partial: dict[int, str] = {}
        """Per thread: text written since its last newline."""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, text: str) -> int:
        thread = threading.get_ident()
        if "\n" not in text:
            self._partial[thread] = self._partial.get(thread, "") + text
            return len(text)
        lines, _, rest = text.rpartition("\n")
        whole = self._partial.pop(thread, "") + lines + "\n"
        if rest:
            self._partial[thread] = rest
        self._write(whole)
        return len(text)

    def flush(self) -> None:
        """Write out every thread's unfinished line (at exit, or when asked)."""
        for thread in list(self._partial):
            text = self._partial.pop(thread, "")
            if text:
                self._write(text)

    def _write(self, text: str) -> None:
        data = text.encode(self._encoding, "replace")
        while data:
            try:
                written = os.write(self._fd, data)
            except InterruptedError:
                continue
            except OSError:  # the reader went away: nothing more can be shown
                return
            data = data[written:]


def write_whole_lines() -> None:
    """Make this process's ``sys.stdout`` and ``sys.stderr`` line writers (a worker process)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            continue  # replaced by something without a descriptor (a test harness): leave it
        stream.flush()
        setattr(sys, name, LineWriter(fd, getattr(stream, "encoding", None) or "utf-8"))
