"""The agent loop, its tools, the context budget and the provider adapters.

No database access here: the tasks domain builds a :class:`~evershell.agent.loop.LoopContext`,
calls :func:`~evershell.agent.loop.run`, stores what it emits and moves the task's status.
"""
