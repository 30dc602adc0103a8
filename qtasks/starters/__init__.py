"""Starters at upstream's import paths: the supervisor starts and stops serving for both kinds of app."""

from qtasks.starters.base import BaseStarter
from qtasks.worker.supervisor import Supervisor

AsyncStarter = Supervisor
SyncStarter = Supervisor

__all__ = ["AsyncStarter", "BaseStarter", "Supervisor", "SyncStarter"]
