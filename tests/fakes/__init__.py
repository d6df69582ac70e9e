"""Fakes of the services router talks to, on real loopback sockets."""
