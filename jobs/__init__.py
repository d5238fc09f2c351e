"""Jobs: the state machine of a job row, the queue (enqueueing by task name, asking the broker),
the reaper and queue reconciler, and the gathering of training data from hints and priors.

Torch-free: the API imports only this package to run jobs; the worker runs what it enqueues.
"""
