"""The QTasks broker daemon: queues, in-flight table, task records and result waiters.

Run it with ``qtasks-broker``; embed it with :class:`broker_daemon.server.Broker`.
"""

from broker_daemon.core import BrokerCore
from broker_daemon.server import Broker

__all__ = ["Broker", "BrokerCore"]
