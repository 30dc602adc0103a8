from qtasks.brokers.base import BaseBroker
from qtasks.brokers.zmq_broker import ZmqBroker

__all__ = ["BaseBroker", "ZmqBroker"]
