"""Seeing and steering what runs: the operators' client (``OpsClient``) and the commands built on it
(``qtasks status``, ``inspect``, ``tasks``, ``cancel``)."""

from qtasks.ops.client import OpsClient

__all__ = ["OpsClient"]
