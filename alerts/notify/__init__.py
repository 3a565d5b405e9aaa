"""Notification channels behind one small Protocol, one module per channel."""
