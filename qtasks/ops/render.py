"""Text for people: ``qtasks status``, ``inspect`` and ``tasks`` output, from ``OpsClient`` values."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, Optional

WIDTH = 100


def ago(seconds: Optional[float]) -> str:
    """``3.2s``, ``4m05s``, ``2h07m``, ``3d04h`` (``-`` for None)."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def stamp(at: Optional[float]) -> str:
    return "-" if at is None else datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def last_line(traceback: Optional[str]) -> str:
    lines = [line.strip() for line in (traceback or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def status_text(status: dict[str, Any], now: Optional[float] = None) -> str:
    """The status as a screenful of text."""
    now = time.time() if now is None else now
    broker = status.get("broker", {})
    lines = [f"broker {broker.get('url', '?')}  up {ago(broker.get('uptime'))}  "
             f"{'durable (data directory)' if broker.get('durable') else 'in memory'}  "
             f"qtasks {broker.get('version', '?')}  boot {str(broker.get('boot_id', '?'))[:8]}  "
             f"{stamp(now)}", ""]
    lines.append(f"{'QUEUE':24} {'DEPTH':>7}  {'BY PRIORITY':24} {'DELAYED':>7} {'DEAD':>6}")
    queues = status.get("queues", [])
    for queue in queues:
        by_priority = " ".join(f"{p}:{n}" for p, n in queue.get("by_priority", {}).items()) or "-"
        lines.append(f"{short(queue['name'], 24):24} {queue['depth']:>7}  {short(by_priority, 24):24} "
                     f"{queue['delayed']:>7} {queue['dead']:>6}")
    if not queues:
        lines.append("(no queues yet)")
    lines += ["", f"{'WORKER':22} {'HOST':16} {'PID':>7} {'QUEUE':16} {'SLOTS':>7}  RUNNING"]
    workers = status.get("workers", [])
    for worker in workers:
        running = worker.get("running", [])
        slots = f"{len(running)}/{worker['slots']}"
        first = True
        for task in running or [None]:
            what = "-" if task is None else (f"{task.get('name') or '?'} {str(task['uuid'])[:8]} "
                                             f"for {ago(now - task['since']) if task.get('since') else '?'}")
            if first:
                lines.append(f"{short(worker['id'], 22):22} {short(worker['host'], 16):16} {worker['pid']:>7} "
                             f"{short(worker['queue'], 16):16} {slots:>7}  {what}")
                first = False
            else:
                lines.append(f"{'':22} {'':16} {'':>7} {'':16} {'':>7}  {what}")
    if not workers:
        lines.append("(no workers connected)")
    rates = status.get("rates", {})
    lines += ["", "RATES per second over the last minute: "
              f"submitted {rates.get('submitted', 0):.2f}  finished {rates.get('finished', 0):.2f}  "
              f"failed {rates.get('failed', 0):.2f}"]
    failures = status.get("failures", [])
    lines += ["", "FAILURES by exception type (newest first)"]
    for failure in failures[:10]:
        last = failure["last"]
        lines.append(f"  {short(failure['exception'], 28):28} x{failure['count']:<6} last {ago(now - last['at'])} "
                     f"ago: {short(last['name'], 20)} {str(last['uuid'])[:8]}  {short(last['message'], 40)}")
    if not failures:
        lines.append("  (none)")
    if len(failures) > 10:
        lines.append(f"  ... {len(failures) - 10} more types (--json shows all)")
    timers = status.get("timers", [])
    if timers:
        lines += ["", "TIMERS"]
        for job in timers[:20]:
            fire = job.get("next_fire")
            when = "no next fire" if fire is None else f"next {stamp(fire)} (in {ago(fire - now)})"
            lines.append(f"  {short(job['app'], 16):16} {short(job['task'], 20):20} {short(job['trigger'], 32):32} "
                         f"{when}")
    return "\n".join(lines)


def task_text(task: dict[str, Any], chain: list[str], now: Optional[float] = None) -> str:
    """One task in full; ``chain`` is its retry chain, oldest first (it included)."""
    now = time.time() if now is None else now
    lines = [f"task      {task['uuid']}",
             f"name      {task['name']}   queue {task['queue']}   priority {task['priority']}",
             f"status    {task['status']}   attempts {task.get('attempts', '?')}"
             + (f"   reason: {task['cancel_reason']}" if task.get("cancel_reason") else ""),
             f"created   {stamp(task['created_at'])} ({ago(now - task['created_at'])} ago)",
             f"updated   {stamp(task['updated_at'])} ({ago(now - task['updated_at'])} ago)",
             f"args      {short(task['args'], WIDTH)}",
             f"kwargs    {short(task['kwargs'], WIDTH)}"]
    if task["status"] == "success" or task["returning"] is not None:
        lines.append(f"result    {short(task['returning'], WIDTH)}")
    steps = task.get("steps") or []
    if steps:
        lines.append(f"steps     {len(steps)}")
        lines += [f"  {i:>4}  {short(step, WIDTH)}" for i, step in enumerate(steps)]
    if len(chain) > 1:
        lines.append("retries   " + " -> ".join(u + (" (this)" if u == task["uuid"] else "") for u in chain))
    if task.get("trimmed"):
        lines.append(f"left out  {', '.join(task['trimmed'])} (too large to show)")
    if task.get("traceback"):
        lines += ["traceback", *("  " + line for line in task["traceback"].rstrip().splitlines())]
    return "\n".join(lines)


def tasks_text(tasks: list[dict[str, Any]]) -> str:
    if not tasks:
        return "no tasks match"
    lines = [f"{'UUID':36}  {'NAME':20} {'STATUS':8} {'PRIO':>4}  {'UPDATED':19}  DETAIL"]
    for task in tasks:
        if task["status"] in ("error", "retry"):
            detail = last_line(task.get("traceback"))
        elif task["status"] == "success":
            detail = short(task["returning"], 40)
        elif task["status"] == "cancel":
            detail = task.get("cancel_reason") or ""
        else:
            detail = short(task["args"], 40)
        lines.append(f"{task['uuid']:36}  {short(task['name'], 20):20} {task['status']:8} {task['priority']:>4}  "
                     f"{stamp(task['updated_at']):19}  {short(detail, 50)}")
    return "\n".join(lines)
