"""The client side of the wire: a thread-safe connection, and turning replies into API values."""

from qtasks.client.calls import PendingCall
from qtasks.client.connection import BrokerConnection

__all__ = ["BrokerConnection", "PendingCall"]
