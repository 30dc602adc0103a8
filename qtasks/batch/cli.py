"""``qtasks -A app:app map TASK INPUT.jsonl [-o OUTPUT.jsonl] [--resume]``: a batch job from the shell.

Each input line is one call of TASK and each gives one output line (the formats: :mod:`qtasks.batch.jsonl`).
The calls run as ``task.map`` runs them (chunked, a bounded window, lazily read, so a file of
millions of lines runs in flat memory). Who runs them:

- a broker at the app's URL with worker processes serving the app: they do (nothing is started);
- a broker there without such workers: ``--processes`` workers are started here for the job;
- nothing there: a broker is hosted here too, for the job (as ``app.serving()`` does).

Exit codes: 0 every item succeeded (those of earlier runs kept by ``--resume`` included), 1 some
ended in error (bad input lines count), 2 the job could not start or stopped on an error of its
own, 130 interrupted (Ctrl+C or SIGTERM: what is queued is cancelled and the output ends at a whole
line, ready for ``--resume``).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Iterator, Optional

from qtasks.arguments import at_least, positive_int, usable_cpus
from qtasks.batch.jsonl import (
    Call,
    Line,
    ResultWriter,
    Resumed,
    count_lines,
    error_line,
    failure_line,
    read_lines,
    read_results,
    success_line,
)
from qtasks.batch.mapping import MapRun, iterate
from qtasks.exc import BrokerUnavailableError, MapItemError, NotABrokerError, QTasksError
from qtasks.logs import FORMAT, configured_level
from qtasks.progress import progress_reporter
from qtasks.protocol import DEFAULT_MAX_MESSAGE_SIZE, pack_arguments
from qtasks.urls import NOTHING, STRANGER, probe

WORKERS_START_TIMEOUT = 60.0
"""How long workers started here may take to say they serve."""
STOP_GRACE = 5.0
"""Seconds calls still running when the job stops (Ctrl+C) get to finish in workers started here."""
REPORTED_BAD_LINES = 20
"""Bad input lines named on stderr one by one; the rest are counted (all are in the output)."""
HELD_ERROR_LINES = 10_000
"""Error lines of bad input lines held back to keep the output in input order; past this many (a long
run of bad lines) they are written at once."""
INTERRUPTED = 130
PROBE_TIMEOUT = 0.5

HELP = """Each line of INPUT is one call of TASK: a JSON list gives the positional arguments, an object the
keyword arguments, any other JSON value the one argument. Blank lines are skipped (no call, no
output line) and do not change the numbering: input line N+1 has index N.

Each call gives one output line, written within 0.2 s of its end: {"index": N, "status": "success",
"returning": ...} or {"index": N, "status": "error", "error": "..."}, in input order. A line that is not JSON is
reported on stderr with its line number and written as an error line; so are results JSON cannot
hold.

--resume (same INPUT, same -o OUTPUT) keeps the output's complete lines and runs only the indices
it lacks: after Ctrl+C, a kill or a crash the batch goes on where it stopped, each index in the
output once.

Workers: when workers serve the app at its broker URL ($QTASKS_BROKER_URL or the app's), the calls
go to them and --processes is not used; otherwise --processes workers (and a broker, when none
listens) run here for the duration of the job.

Exit code: 0 all succeeded, 1 some items ended in error, 2 the job could not run, 130 interrupted."""

log = logging.getLogger("qtasks.batch")


def add_commands(commands: Any) -> None:
    batch = commands.add_parser("map", help="a batch job: a task once per JSON line of a file",
                                description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    batch.add_argument("task", metavar="TASK", help="the task's name")
    batch.add_argument("input", metavar="INPUT", type=Path, help="a JSON Lines file, one call a line")
    batch.add_argument("-o", "--output", metavar="OUTPUT", type=Path, default=None,
                       help="where to write the results (default: stdout); started afresh unless --resume")
    batch.add_argument("--resume", action="store_true",
                       help="keep OUTPUT's result lines and run only the items it lacks (needs -o)")
    batch.add_argument("--processes", type=at_least(0), default=None, metavar="N",
                       help="worker processes to start when none serve the app (default: the CPUs this "
                            "process may use; 0: start none, only submit)")
    batch.add_argument("--concurrency", type=positive_int, default=None, metavar="K",
                       help="calls each started process runs at once (default: config.max_tasks_process; "
                            "1 suits CPU-bound tasks)")
    batch.add_argument("--chunksize", type=positive_int, default=None, metavar="C",
                       help="calls per envelope (default: adapts to how long a call takes)")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")



def run_map(args: argparse.Namespace, app: Any) -> int:
    """Run the batch ``args`` describe on ``app``; the exit code."""
    if app._lookup(args.task) is None:
        names = ", ".join(sorted(app.tasks)) or "none"
        _say(f"qtasks: app {app.name!r} has no task {args.task!r}; its tasks: {names}")
        return 2
    if args.resume and args.output is None:
        _say("qtasks: map --resume continues an output file: give it with -o OUTPUT")
        return 2
    try:
        lines = count_lines(args.input)
        resumed = read_results(args.output, lines) if args.resume and args.output.exists() else None
        _configure_logging()
    except (OSError, QTasksError, ValueError) as exc:  # ValueError: $QTASKS_LOG_LEVEL
        _say(f"qtasks: map: {exc}")
        return 2
    except KeyboardInterrupt:
        return INTERRUPTED
    job = Job(app, args, lines, resumed)
    try:
        with _workers(app, args.processes, args.concurrency), _stop_on_sigterm():
            return job.run()
    except KeyboardInterrupt:
        again = "run it again with --resume to go on" if args.output else "only a batch with -o OUTPUT can resume"
        _say(f"qtasks: map interrupted, the queued calls cancelled: {job.summary()}; {again}")
        return INTERRUPTED
    except (OSError, QTasksError, TimeoutError) as exc:
        _say(f"qtasks: map stopped: {exc}; {job.summary()}")
        return 2


class Job:
    """One run of ``qtasks map``: reads the input, feeds the map, writes each result as it comes."""

    def __init__(self, app: Any, args: argparse.Namespace, lines: int, resumed: Optional[Resumed]) -> None:
        self.app = app
        self.args = args
        self.lines = lines
        self.done = resumed.done if resumed is not None else None
        self.errors = resumed.errors if resumed is not None else 0
        self.kept = resumed.done.count if resumed is not None else 0
        self.keep_bytes = resumed.size if resumed is not None else 0
        self.bad = 0
        self.limit = app.broker.max_message_size or DEFAULT_MAX_MESSAGE_SIZE
        self.writer: Optional[ResultWriter] = None
        self.pending: deque[int | bytes] = deque()
        """The input indices of the calls the map took, in order (its results come in this order), and
        between them the error lines of bad input lines after those calls, to be written in their turn."""
        self.held = 0
        """Error lines in ``pending``."""
        self.read = 0
        """Input lines read."""
        self.passed = 0
        """Input lines dealt with (for the progress bar)."""

    def run(self) -> int:
        args = self.args
        progress = progress_reporter(not args.no_progress, self.lines, unit="line",
                                     description=args.task)
        self.writer = ResultWriter(args.output, self.keep_bytes)
        try:
            workers = self.app._workers_call().result()
            run = MapRun(self.app, args.task, self._calls(progress), chunksize=args.chunksize,
                         return_exceptions=True, total=self.lines - self.kept,  # at most: blank lines make fewer
                         processes=workers[0], slots=workers[1])
            for result in iterate(run):
                index = self._next_call()
                if isinstance(result, MapItemError):
                    self.writer.write(failure_line(index, result))
                    self.errors += 1
                else:
                    line, succeeded = success_line(index, result)
                    self.errors += not succeeded
                    self.writer.write(line)
                self._passed(progress)
            for entry in self.pending:  # error lines after the last call
                assert isinstance(entry, bytes)
                self.writer.write(entry)
        finally:
            self.writer.close()
            if progress is not None:
                progress.close()
        if self.bad > REPORTED_BAD_LINES:
            _say(f"qtasks: {self.bad} bad input line(s) in all, each written as an error line")
        _say(f"qtasks: map {args.task}: {self.summary()}")
        return 1 if self.errors else 0

    def _calls(self, progress: Any) -> Iterator[Call]:
        """The input's calls for the map; lines done already and bad ones are dealt with here."""
        with open(self.args.input, "rb") as handle:
            for line in read_lines(handle, self.limit):
                self.passed += line.index - self.read  # the blank lines before this one
                self.read = line.index + 1
                if self.done is not None and line.index in self.done:
                    self._passed(progress)
                    continue
                problem = line.error or self._unpackable(line)
                if problem is not None:
                    self._bad(line, problem)
                    self._passed(progress)
                    continue
                assert line.call is not None
                self.pending.append(line.index)
                yield line.call
        self.passed += self.lines - self.read  # blank lines at the end

    def _unpackable(self, line: Line) -> Optional[str]:
        """Why the call cannot travel (e.g. an integer over 64 bits), checked here: in the map it would stop it."""
        assert line.call is not None
        args, kwargs = line.call
        try:
            pack_arguments(self.args.task, args, kwargs, self.limit // 2)
        except (QTasksError, TypeError, ValueError) as exc:
            return str(exc)
        return None

    def _bad(self, line: Line, problem: str) -> None:
        assert self.writer is not None
        self.bad += 1
        self.errors += 1
        if self.bad <= REPORTED_BAD_LINES:
            _say(f"qtasks: {self.args.input}, line {line.index + 1}: {problem}")
        entry = error_line(line.index, f"line {line.index + 1}: {problem}")
        if self.pending and self.held < HELD_ERROR_LINES:
            self.pending.append(entry)  # after the results of the calls before it
            self.held += 1
        else:
            self.writer.write(entry)

    def _next_call(self) -> int:
        """The input index of the map's next result, once the error lines before it are written."""
        assert self.writer is not None
        while True:
            entry = self.pending.popleft()
            if isinstance(entry, int):
                return entry
            self.writer.write(entry)
            self.held -= 1

    def _passed(self, progress: Any) -> None:
        self.passed += 1
        if progress is not None:
            progress(self.passed)

    def summary(self) -> str:
        written = self.writer.written if self.writer is not None else 0
        kept = f" ({self.kept} kept from the earlier run)" if self.kept else ""
        where = self.args.output or "stdout"
        return f"{written} result line(s) written to {where}{kept}, {self.errors} error(s)"


def _say(text: str) -> None:
    """A line on stderr that leaves a progress bar whole."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)


def _configure_logging() -> None:
    """Warnings and worse from this process and the workers it starts (their INFO lines would
    break up the progress bar), unless the program or ``$QTASKS_LOG_LEVEL`` says otherwise."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
        root.setLevel(configured_level(None, logging.WARNING))


@contextmanager
def _workers(app: Any, processes: Optional[int], concurrency: Optional[int]) -> Iterator[None]:
    """Use the workers serving ``app``, or start some (and a broker) here for the job."""
    url = app.broker.url
    found, detail = probe(url, PROBE_TIMEOUT)
    if found == STRANGER:
        raise NotABrokerError(url, detail)
    if found == NOTHING and processes == 0:
        raise BrokerUnavailableError(url, PROBE_TIMEOUT)  # --processes 0: start none here
    serving = app._workers_call().result()[0] if found != NOTHING else 0
    if serving or processes == 0:
        if not serving:
            _say(f"qtasks: no worker process serves app {app.name!r} at {url} (--processes 0): the calls wait "
                 "in its queue until one does")
        else:
            _say(f"qtasks: submitting to the {serving} worker process(es) serving app {app.name!r} at {url}")
        yield
        return
    wanted = processes or usable_cpus()
    hosted = "a broker hosted here and " if found == NOTHING else ""
    _say(f"qtasks: running the calls on {hosted}{wanted} worker process(es) started here, at {url}")
    with app.serving(processes=wanted, concurrency=concurrency, grace=STOP_GRACE):
        _wait_for_workers(app, wanted)
        yield


def _wait_for_workers(app: Any, wanted: int) -> None:
    """Until the workers started here serve (a map sizes its window by them), within a bound."""
    deadline = time.monotonic() + WORKERS_START_TIMEOUT
    while app._workers_call().result()[0] < wanted:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {wanted} worker process(es) started here did not serve within "
                               f"{WORKERS_START_TIMEOUT:g} s (their log lines above say why)")
        time.sleep(0.05)


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM stops the job as Ctrl+C does: the queue cancelled, the output left whole."""
    def interrupt(signum: int, frame: Optional[FrameType]) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
