"""Durable numbered event streams: each stream (``workspace:ws_…``, ``task:tsk_…``)
numbers its events 1, 2, 3, … in the database; events are published to Redis after
their transaction commits; one subscription per web process fans them out to SSE
clients, which replay from the database first and de-duplicate by number."""
