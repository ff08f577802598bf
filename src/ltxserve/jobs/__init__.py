"""The job layer, in three packages that say what they are:

- ``contract``: request validation and the model catalog (the wire contract);
- ``store``: tables, SQL, migrations, dialect differences;
- ``lifecycle``: states, the manager, the doorbell.

Layers: api, worker, inputs -> JobManager (the one gateway) -> JobStore (a Protocol:
SQL or in-memory). Only a store writes a job's status, and only through
``states.check_transition``.
"""
