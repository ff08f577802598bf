"""The job layer, in three packages that say what they are:

- ``contract``: request validation and the model catalog (the wire contract);
- ``store``: tables, SQL, migrations, dialect differences;
- ``lifecycle``: states, the manager, the doorbell.

Layers: api -> manager (JobManager) -> store (JobStore, SQLAlchemy). Only the
store writes a job's status, and only through ``states.check_transition``.
"""
