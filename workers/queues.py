"""The worker's queues in the order it serves them (kombu's "priority" strategy: the first
with a task wins), kept apart from the Celery app so the CLI can name them without it.

intake feeds the pipeline; a checked letter goes out before more are checked; the writers'
mail (notices, replies' forwards) comes last. During a burst the letters reach the prison
service first and the notices follow once nothing else waits; at an ordinary rate every
queue is empty between letters and mail leaves at once. Waiting mail is not lost: it is in
its queue and in the outbox (SQL), which the sweeper re-drives."""

QUEUES = ("intake", "submit", "letters", "mail")
