"""The job layer: request validation, the state machine, the store and the manager.

Layers: api -> manager (JobManager) -> store (JobStore, SQLAlchemy). Only the
store writes a job's status, and only through ``states.check_transition``.
"""
