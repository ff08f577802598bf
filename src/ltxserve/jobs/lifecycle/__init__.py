"""The job lifecycle: the state machine, the manager (the one gateway for API and worker)
and the doorbell that wakes idle workers."""
