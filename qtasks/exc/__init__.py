"""Every exception QTasks raises on purpose, in one place.

::

    QTasksError
    ├── ConfigError                     a setting with a value it cannot take (also ValueError)
    │   └── KeyFileError                a CURVE key (file) that is missing or malformed
    ├── ProtocolError                   a frame that does not follow qtasks.protocol
    │   ├── DecodeError                 malformed bytes / wrong shape (carries the data)
    │   └── ProtocolVersionError        a peer speaking another protocol version
    ├── BrokerUnavailableError          no broker answered at the URL (also ConnectionError)
    │   ├── NotABrokerError             something listens at the URL, but it is not a QTasks broker
    │   └── SecurityMismatchError       the broker uses CURVE and this side does not, or the reverse
    ├── MessageTooLargeError            a message over the broker's --max-message-size (also ValueError)
    ├── InvalidTaskIdError              a task id that is not a UUID (also ValueError)
    ├── TaskNotFoundError               the broker keeps no record of a task (also LookupError)
    ├── BrokerReplyError                the broker refused a request (carries its code)
    │   └── StateError                  a State operation the state actor refused (also ValueError)
    ├── TaskLostError                   the broker no longer knows a task a client waits for
    ├── UnserializableArgumentError     an argument msgpack cannot carry (also TypeError)
    ├── UnserializableResultError       a task returned a value msgpack cannot carry (also TypeError)
    ├── UnknownTaskError                a task name no worker registered (also LookupError)
    ├── TaskTimeLimitError              a task ran past its max_time (also TimeoutError)
    ├── TaskExitError                   a task called sys.exit() or raised KeyboardInterrupt
    ├── AppLoadError                    ``-A module:app`` could not be loaded
    └── BatchFileError                  ``qtasks map``: an output file to resume that is not one it wrote

    Retry                               raised inside a task to run it again, maybe later
    TaskCancelError(RuntimeError)       raised inside a task to end it with status "cancel"
    TaskPluginTriggerError(Exception)   raised inside a task for plugins to handle

The last two keep upstream QTasks' bases so ``except RuntimeError`` code keeps working.
"""

from __future__ import annotations

from typing import Any


class QTasksError(Exception):
    """Base class of the errors QTasks raises itself."""


class ConfigError(QTasksError, ValueError):
    """A setting has a value it cannot take (``QueueConfig``, ``QTASKS_<FIELD>`` variables)."""


class DataDirError(QTasksError):
    """The broker's data directory cannot be used (``qtasks-broker --data-dir``)."""


class DataDirInUseError(DataDirError):
    def __init__(self, directory: str, pid: int | None) -> None:
        holder = f"qtasks-broker pid {pid}" if pid else "another qtasks-broker"
        super().__init__(f"the data directory {directory} is in use by {holder}: stop that broker, or give this "
                         "one another --data-dir")
        self.directory = directory
        self.pid = pid


class KeyFileError(ConfigError):
    """A CURVE key given as ``what`` (a setting or a flag) cannot be used: ``source`` (a path, or
    the value given) is missing, unreadable, or holds no key of the kind needed."""

    def __init__(self, what: str, source: str, problem: str) -> None:
        super().__init__(f"{what}: {problem}. Give the path of a key file made by `qtasks keys generate DIR` "
                         "(public keys end in .key, secret keys in .key_secret), or a 40-character z85 key")
        self.what = what
        self.source = source


class ProtocolError(QTasksError):
    """A message does not follow the wire format of :mod:`qtasks.protocol`."""


class DecodeError(ProtocolError):
    """Bytes that cannot be decoded into a message; ``data`` and ``cause`` say what and why."""

    def __init__(self, message: str, data: Any = None, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.data = data
        self.cause = cause


class ProtocolVersionError(ProtocolError):
    """The peer speaks another protocol version."""

    def __init__(self, theirs: str, ours: int) -> None:
        super().__init__(
            f"protocol version mismatch: the peer speaks {theirs!r}, this side speaks version {ours}; "
            "upgrade the older side so both run the same qtasks release"
        )
        self.theirs = theirs
        self.ours = ours


class BrokerUnavailableError(QTasksError, ConnectionError):
    """No broker answered at ``url`` within ``waited`` seconds.

    ``curve``: this side uses CURVE keys. A broker that refuses a key (or a client holding the
    wrong broker key) never answers at all: ZeroMQ drops the handshake without a word, so
    the message then says that the keys may be why.
    """

    def __init__(self, url: str, waited: float, *, curve: bool = False) -> None:
        if curve:
            message = (
                f"no QTasks broker answered at {url} within {waited:g} s. This client uses CURVE keys: "
                "the broker may have refused them. Check that curve_server_key "
                "(QTASKS_CURVE_SERVER_KEY) is the broker's public key file, and that this client's "
                "public key file is in the directory the broker reads with --curve-clients (or "
                "--curve-workers); the broker logs each key it refuses. Otherwise no broker is "
                f"running there: start one with `qtasks-broker --bind {url} --curve-secret-key ...`"
            )
        else:
            message = (
                f"no QTasks broker answered at {url} within {waited:g} s. Start one with "
                f"`qtasks-broker --bind {url}`, or run `qtasks -A module:app run` (or app.run_forever()), "
                "which hosts a broker itself when none is running; set QTASKS_BROKER_URL or "
                "QueueTasks(broker_url=...) if the broker listens elsewhere"
            )
        super().__init__(message)
        self.url = url
        self.waited = waited
        self.curve = curve


class NotABrokerError(BrokerUnavailableError):
    """Something accepts connections at ``url``, but it does not speak ZeroMQ: not a QTasks broker."""

    def __init__(self, url: str, detail: str = "") -> None:
        QTasksError.__init__(
            self,
            f"the listener at {url} is not a QTasks broker ({detail or 'it did not answer the ZeroMQ handshake'}); "
            "another program holds that address: stop it, or point QueueTasks(broker_url=...), "
            "QTASKS_BROKER_URL or --broker at the broker's address",
        )
        self.url = url
        self.waited = 0.0


class SecurityMismatchError(BrokerUnavailableError):
    """The broker at ``url`` uses another security mechanism than this side (``theirs``, ``ours``:
    ``"CURVE"`` or ``"NULL"``, no authentication), so no connection can ever be made."""

    def __init__(self, url: str, theirs: str, ours: str) -> None:
        if theirs == "CURVE":
            fix = ("the broker requires CURVE keys and this side has none: give it the broker's public key "
                   "and a key pair of its own (QueueTasks(curve_server_key=..., curve_secret_key=...), "
                   "QTASKS_CURVE_SERVER_KEY and QTASKS_CURVE_SECRET_KEY, or qtasks run --curve-server-key "
                   "FILE --curve-secret-key FILE; `qtasks keys generate DIR` makes key pairs)")
        elif ours == "CURVE":
            fix = ("this side has CURVE keys but the broker does not use CURVE: start the broker with "
                   "--curve-secret-key (and --curve-clients/--curve-workers), or remove the keys here "
                   "(curve_server_key, curve_public_key, curve_secret_key and their QTASKS_CURVE_* variables)")
        else:
            fix = f"the broker speaks the {theirs} mechanism, which QTasks does not use"
        QTasksError.__init__(self, f"cannot connect to the broker at {url}: {fix}")
        self.url = url
        self.waited = 0.0
        self.curve = ours == "CURVE"
        self.theirs = theirs
        self.ours = ours


class MessageTooLargeError(QTasksError, ValueError):
    """A message would exceed the largest one the broker accepts (``qtasks-broker --max-message-size``)."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(
            f"{what} takes {size} bytes, over the {limit}-byte limit of the broker "
            "(qtasks-broker --max-message-size); pass a reference (a path, a key) instead of the data, "
            "or start the broker with a larger --max-message-size"
        )
        self.size = size
        self.limit = limit


class InvalidTaskIdError(QTasksError, ValueError):
    """A task id that is not a UUID."""

    def __init__(self, value: object) -> None:
        super().__init__(
            f"{value!r} is not a task id: give the uuid of a task (a uuid.UUID, or its text "
            "such as 'b2c8f3f0-5f3c-4a57-9a62-1d2b0c5f1a70', as Task.uuid holds it)"
        )
        self.value = value


class TaskNotFoundError(QTasksError, LookupError):
    """The broker keeps no record of the task ``uuid`` (never submitted there, or expired)."""

    def __init__(self, uuid: object, url: str) -> None:
        super().__init__(
            f"the broker at {url} has no task {uuid}: it was never submitted there, or its record was "
            "deleted (ended records are kept for qtasks-broker --result-ttl; a broker without --data-dir "
            "forgets everything when it restarts). List the tasks it knows: qtasks --broker URL tasks"
        )
        self.uuid = uuid
        self.url = url


class BrokerReplyError(QTasksError):
    """The broker answered a request with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"broker refused the request ({code}): {message}")
        self.code = code
        self.message = message


class StateError(BrokerReplyError, ValueError):
    """The state actor refused an operation (unknown op, a key that is not a string, incr of text...)."""

    def __init__(self, code: str, message: str) -> None:
        QTasksError.__init__(self, message)
        self.code = code
        self.message = message


class QueueFullError(BrokerReplyError):
    """The broker refused a submit: its queue holds as many tasks (or bytes) as it may. Nothing of the
    submit was stored; submit again once workers caught up (or raise ``qtasks-broker --max-queued-*``)."""

    def __init__(self, code: str, message: str) -> None:
        QTasksError.__init__(self, message)
        self.code = code
        self.message = message


def reply_error(code: str, message: str) -> BrokerReplyError:
    """The exception for an ERROR reply with ``code``."""
    return {"state": StateError, "queue-full": QueueFullError}.get(code, BrokerReplyError)(code, message)


class TaskLostError(QTasksError):
    """The broker restarted without persistence and no longer knows these tasks.

    ``uuids`` are the lost tasks; ``results`` (set for waits on several tasks) holds, in the
    order they were asked for, the tasks that did end (a ``Task``) and None for the lost ones.
    """

    def __init__(self, uuids: list[Any], results: list[Any] | None = None) -> None:
        shown = ", ".join(str(u) for u in uuids[:5]) + (" ..." if len(uuids) > 5 else "")
        super().__init__(
            f"the broker restarted and does not know task(s) {shown}: it keeps tasks in memory "
            "unless started with a data directory; submit them again"
        )
        self.uuids = uuids
        self.results = results if results is not None else []


class UnserializableArgumentError(QTasksError, TypeError):
    """A task argument msgpack cannot carry; raised before anything is sent."""

    def __init__(self, task_name: str, argument: str, value: Any, detail: str = "") -> None:
        kind = type(value).__qualname__
        super().__init__(
            f"task {task_name!r}: argument {argument} of type {kind} cannot be sent to a worker"
            f"{' (' + detail + ')' if detail else ''}; pass msgpack-native values (None, bool, int, "
            "float, str, bytes, list, tuple, dict) and convert other objects first"
        )
        self.task_name = task_name
        self.argument = argument
        self.value_type = type(value)


class UnserializableResultError(QTasksError, TypeError):
    """A task's return value msgpack cannot carry."""

    def __init__(self, task_name: str, value: Any) -> None:
        super().__init__(
            f"task {task_name!r} returned a {type(value).__qualname__}, which msgpack cannot carry; "
            "return msgpack-native values or give the task a decode= callable that converts it"
        )
        self.task_name = task_name


class UnknownTaskError(QTasksError, LookupError):
    """A worker got a task name that its app did not register."""

    def __init__(self, task_name: str, known: list[str], close: list[str]) -> None:
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(sorted(known)[:20]) or "none"
        super().__init__(
            f"unknown task {task_name!r}{hint} (tasks registered on this worker: {listing})"
        )
        self.task_name = task_name
        self.close_matches = close

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return str(self.args[0])


class TaskTimeLimitError(QTasksError, TimeoutError):
    """A task ran longer than its ``max_time``; the message is upstream's."""

    def __init__(self, task_name: str, max_time: float, thread_done: Any = None) -> None:
        super().__init__(f"Time limit exceeded for task {task_name}: {max_time} seconds")
        self.task_name = task_name
        self.max_time = max_time
        self.thread_done = thread_done
        """For a plain ``def`` task: an Event set when its thread finally returns (it cannot be stopped)."""


class TaskExitError(QTasksError):
    """A task tried to end its worker process (``sys.exit()``, ``raise KeyboardInterrupt``)."""

    def __init__(self, task_name: str, raised: BaseException) -> None:
        what = f"{type(raised).__name__}({', '.join(repr(a) for a in raised.args)})"
        super().__init__(
            f"task {task_name!r} raised {what}, which would end its worker process and every task in "
            "it; the task failed instead. Return a value or raise an exception to end a task"
        )
        self.task_name = task_name


class AppLoadError(QTasksError):
    """What a command line names as ``module:attribute`` (``-A``, ``--storage``) cannot be loaded.

    ``traceback``: when the module's own code failed while it was imported, the formatted
    traceback of that error (its frames in the user's files), for the command line to show."""

    def __init__(self, message: str, traceback: str | None = None) -> None:
        super().__init__(message)
        self.traceback = traceback


class Retry(QTasksError):
    """Raise inside a task to have it run again: ``raise Retry(delay=30)``.

    The broker holds the next run until ``delay`` seconds passed (no worker sleeps on it).
    Each retry uses up one of the task's ``retry=`` runs (3 when the task sets none).
    """

    def __init__(self, delay: float = 0.0, reason: str = "") -> None:
        if delay < 0:
            raise ValueError(f"a retry delay cannot be negative, got {delay}")
        super().__init__(reason or f"retry requested (delay {delay:g} s)")
        self.delay = delay


class MapItemError(QTasksError):
    """One call of ``task.map`` (or ``imap``, ``starmap``) failed: ``index`` is its place in the input,
    ``uuid`` the task (chunk) that ran it, ``traceback`` the remote traceback. By default the first
    failure raises this and the rest of the map is cancelled; with ``return_exceptions=True`` it
    takes the failed item's place instead."""

    def __init__(self, task_name: str, index: int, uuid: Any, status: str, traceback: str | None) -> None:
        last = (traceback or "").strip().splitlines()[-1:] or [status]
        super().__init__(f"item #{index} of {task_name}.map ended {status} (task {uuid}): {last[0]}")
        self.task_name = task_name
        self.index = index
        self.uuid = uuid
        self.status = status
        self.traceback = traceback


class BatchFileError(QTasksError, ValueError):
    """``qtasks map --resume``: the output file holds a line that is not a result line of that input
    (so resuming it could skip or repeat items)."""

    def __init__(self, path: Any, line: int, problem: str) -> None:
        super().__init__(f"{path}, line {line}: {problem}; it is not the output of this batch: fix or remove "
                         "that line, or write to another file")
        self.path = path
        self.line = line


class TaskCancelError(RuntimeError):
    """Raised inside a task (``self.ctx.cancel(reason)``) to end it with status ``cancel``."""


class TaskPluginTriggerError(Exception):
    """Raised inside a task for the ``task_executor_run_task_trigger_error`` plugins."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args)
        self.kwargs = kwargs


__all__ = [
    "AppLoadError",
    "BatchFileError",
    "BrokerReplyError",
    "BrokerUnavailableError",
    "ConfigError",
    "DataDirError",
    "DataDirInUseError",
    "DecodeError",
    "InvalidTaskIdError",
    "KeyFileError",
    "MapItemError",
    "MessageTooLargeError",
    "NotABrokerError",
    "ProtocolError",
    "QueueFullError",
    "ProtocolVersionError",
    "QTasksError",
    "Retry",
    "SecurityMismatchError",
    "StateError",
    "TaskCancelError",
    "TaskExitError",
    "TaskLostError",
    "TaskPluginTriggerError",
    "TaskTimeLimitError",
    "UnknownTaskError",
    "UnserializableArgumentError",
    "UnserializableResultError",
]
