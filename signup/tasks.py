"""The signup app's Dramatiq actors, for the worker (django_dramatiq loads
every app's tasks module). Each is declared beside the flow it runs, so a
flow that enqueues and the actor that calls it back need no circle."""

from signup.flows.codes import resend_code

__all__ = ["resend_code"]
