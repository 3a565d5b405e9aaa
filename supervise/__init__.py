"""Supervised workers: every long-running thread of offsite runs under one mechanism."""

from supervise.worker import Supervisor, WorkerHealth

__all__ = ["Supervisor", "WorkerHealth"]
