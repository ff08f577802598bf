"""Webhooks (docs/webhooks.md): signed terminal events, delivered at least once.

callback.py    submit: ``callback_url`` (or the key's default) -> a note on the job
signing.py     Standard Webhooks headers; secrets ``whsec_...`` per key
message.py     the event body: the status object in Standard Webhooks' envelope
sender.py      one POST through the inputs' SSRF guard
dispatcher.py  the delivery loop of an API process (next to the sweeper)

The rows live in the store (jobs/store/deliveries.py: enqueued in the transaction
that ends the job); the rules of an attempt (backoff, giving up) in
jobs/lifecycle/deliveries.py, reached through ``JobManager.deliveries``.
"""
