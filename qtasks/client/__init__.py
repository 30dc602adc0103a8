"""The client side of the wire: a socket-free session, the drivers that run its socket, and
turning replies into API values."""
