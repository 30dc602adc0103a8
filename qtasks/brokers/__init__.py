"""Broker components at upstream's import paths. The default talks to this engine's broker daemon
(``qtasks-broker``) over ZeroMQ; upstream's Redis, RabbitMQ, Kafka and socket brokers do not exist here."""

from __future__ import annotations

from qtasks.brokers.base import BaseBroker
from qtasks.brokers.zmq_broker import ZmqBroker

__all__ = ["BaseBroker", "ZmqBroker"]

_UPSTREAM = ("SyncRedisBroker", "AsyncRedisBroker", "SyncRabbitMQBroker", "AsyncRabbitMQBroker",
             "SyncKafkaBroker", "AsyncKafkaBroker", "SyncSocketBroker", "AsyncSocketBroker")


def __getattr__(name: str) -> object:
    if name in _UPSTREAM:
        raise ImportError(f"{name} is one of upstream's brokers; this engine has its own broker daemon "
                          "(qtasks-broker): build the app without broker= and give it broker_url= "
                          "(or set QTASKS_BROKER_URL)")
    raise AttributeError(f"module 'qtasks.brokers' has no attribute {name!r}")
