"""The files of a command-line batch (``qtasks map``): JSON Lines in, one call a line; JSON Lines
out, one result a line.

Input line ``i + 1`` (index ``i``, counted from 0) is call ``i``::

    [1, 2]              ->  task(1, 2)
    {"a": 1, "b": 2}    ->  task(a=1, b=2)
    "text"              ->  task("text")        (any other JSON value: the one argument)
    (a blank line)      ->  no call and no output line; the lines after it keep their numbers

Output lines, each written whole (see :class:`ResultWriter`)::

    {"index": 0, "status": "success", "returning": 3}
    {"index": 1, "status": "error", "error": "ValueError: ..."}

Resuming reads the output back: its complete lines are the items done; a last line a kill cut
short is cut off the file, so that item runs again and is written once.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator, Optional, Sequence

from qtasks.exc import BatchFileError, MapItemError

Call = tuple[Sequence[Any], dict[str, Any]]
READ_BLOCK = 1 << 20


class Line:
    """One input line that is not blank: its call, or why it is not one."""

    __slots__ = ("index", "call", "error")

    def __init__(self, index: int, call: Optional[Call], error: Optional[str] = None) -> None:
        self.index = index
        self.call = call
        self.error = error


def count_lines(path: Path) -> int:
    """Lines in the file (a last line without a newline counts), read in blocks: memory stays flat."""
    count, last = 0, b"\n"
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(READ_BLOCK), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def read_lines(handle: IO[bytes], limit: int) -> Iterator[Line]:
    """The file's calls, one line at a time; a line over ``limit`` bytes is an error, not read whole."""
    index = 0
    while True:
        raw = handle.readline(limit + 1)
        if not raw:
            return
        if len(raw) > limit and not raw.endswith(b"\n"):
            _skip_rest_of_line(handle)
            yield Line(index, None, f"the line is longer than {limit} bytes (the broker's message limit)")
        elif raw.strip():
            yield parse_line(index, raw)
        index += 1


def _skip_rest_of_line(handle: IO[bytes]) -> None:
    while True:
        raw = handle.readline(READ_BLOCK)
        if not raw or raw.endswith(b"\n"):
            return


def parse_line(index: int, raw: bytes) -> Line:
    try:
        value = json.loads(raw.decode("utf-8-sig" if index == 0 else "utf-8"))  # JSON Lines are UTF-8
    except json.JSONDecodeError as exc:
        return Line(index, None, f"not JSON: {exc.msg} at column {exc.pos + 1}")
    except UnicodeDecodeError as exc:
        return Line(index, None, f"not UTF-8 text: {exc.reason} at column {exc.start + 1}")
    except RecursionError:
        return Line(index, None, "JSON nested too deeply")
    if isinstance(value, list):
        return Line(index, (value, {}))
    if isinstance(value, dict):
        return Line(index, ((), value))
    return Line(index, ((value,), {}))


class IndexSet:
    """The indices done, one bit each: a million lines take 125 kB, in any order."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self.count = 0

    def add(self, index: int) -> bool:
        """Mark ``index`` done; False if it was already."""
        byte, bit = divmod(index, 8)
        if byte >= len(self._bits):
            self._bits.extend(bytes(byte + 1 - len(self._bits)))
        if self._bits[byte] >> bit & 1:
            return False
        self._bits[byte] |= 1 << bit
        self.count += 1
        return True

    def __contains__(self, index: int) -> bool:
        byte, bit = divmod(index, 8)
        return byte < len(self._bits) and bool(self._bits[byte] >> bit & 1)


@dataclass
class Resumed:
    done: IndexSet
    errors: int
    size: int
    """Bytes of whole lines: the file is cut to this length before writing on."""


def read_results(path: Path, lines: int) -> Resumed:
    """What an output file holds already, checking that each line is a result line for an input of
    ``lines`` lines (a line of another file there would make resuming skip or repeat items)."""
    done, errors, size = IndexSet(), 0, 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.endswith(b"\n"):
                break  # the last line, cut short: its item runs again
            try:
                record = json.loads(raw)
            except ValueError as exc:
                raise BatchFileError(path, number, f"not JSON ({exc})") from None
            index = record.get("index") if isinstance(record, dict) else None
            status = record.get("status") if isinstance(record, dict) else None
            if not isinstance(index, int) or isinstance(index, bool) or status not in ("success", "error"):
                raise BatchFileError(path, number, 'not a result line ({"index": N, "status": ...})')
            if not 0 <= index < lines:
                raise BatchFileError(path, number, f"index {index}, but the input has {lines} line(s)")
            if done.add(index) and status == "error":
                errors += 1
            size += len(raw)
    return Resumed(done, errors, size)


def success_line(index: int, value: Any) -> tuple[bytes, bool]:
    """The output line of a call that returned ``value``, and whether it is a success line: a value
    JSON cannot hold makes an error line."""
    try:
        returning = _ENCODE(value)
    except (TypeError, ValueError, RecursionError) as exc:
        return error_line(index, f"the result (a {type(value).__qualname__}) cannot be written as JSON "
                                 f"({exc}); return dict, list, str, int, float, bool or None"), False
    return f'{{"index": {index}, "status": "success", "returning": {returning}}}\n'.encode(), True


def failure_line(index: int, error: MapItemError) -> bytes:
    last = (error.traceback or "").strip().splitlines()[-1:]
    text = last[0] if last else ""
    if error.status != "error" or not text:
        text = f"ended {error.status}" + (f": {text}" if text else "")
    return error_line(index, text)


def error_line(index: int, text: str) -> bytes:
    return f'{{"index": {index}, "status": "error", "error": {_ENCODE(text)}}}\n'.encode()


_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
"""One encoder for every line (``json.dumps`` with options builds a new one per call)."""


class ResultWriter:
    """Appends whole lines to the output file (or stdout).

    Lines are gathered and written together at least every ``FLUSH_EVERY`` seconds (by a thread,
    so a result is written also while the next one is long in coming), not one system call
    each; a kill loses at most those last results, and ``--resume`` runs them again. Writes go
    at the offset of the last whole line, and ``close()`` cuts off anything past it, so the
    file always ends at a line's end."""

    FLUSH_EVERY = 0.2
    FLUSH_SIZE = 1 << 20

    def __init__(self, path: Optional[Path], keep: int = 0) -> None:
        """Write to ``path`` after its first ``keep`` bytes (0: start it afresh), or to stdout."""
        self.path = path
        if path is None:
            sys.stdout.flush()
            self._fd = sys.stdout.fileno()
        else:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o666)
            os.ftruncate(self._fd, keep)
        self.size = keep
        """Bytes of whole lines in the file."""
        self.written = 0
        self._lines: list[bytes] = []
        self._buffered = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._flusher = threading.Thread(target=self._flush_often, name="qtasks-map-output", daemon=True)
        self._flusher.start()

    def write(self, line: bytes) -> None:
        with self._lock:
            self._lines.append(line)
            self._buffered += len(line)
            self.written += 1
        if self._buffered >= self.FLUSH_SIZE:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if not self._lines:
                return
            data = memoryview(b"".join(self._lines))
            done = 0
            while done < len(data):
                if self.path is None:
                    done += os.write(self._fd, data[done:])
                else:  # at the end of the whole lines: an interrupted write is written over
                    done += os.pwrite(self._fd, data[done:], self.size + done)
            self.size += len(data)
            self._lines.clear()
            self._buffered = 0

    def _flush_often(self) -> None:
        while not self._closing.wait(self.FLUSH_EVERY):
            self.flush()

    def close(self) -> None:
        self._closing.set()
        self._flusher.join()
        try:
            self.flush()
        finally:
            if self.path is not None:
                if os.fstat(self._fd).st_size != self.size:
                    os.ftruncate(self._fd, self.size)
                os.close(self._fd)
