"""Request and response bodies, one module per router; common.py is what they share."""
