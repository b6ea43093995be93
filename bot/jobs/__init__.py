"""Jobs: a file (a source) and where to tell people (a replier) become a report.

runner     JobRunner: records, queues, runs and finishes jobs in this process
replies    the console's replier and the silent one (Slack's is bot.slack.replier)
slots      how many analyses run at once; read_ahead: an upload's bytes ahead of the engine
reopen     a job's source and replier again from its record (a restart, another worker)
queue      scale-out: job ids over SQS; worker: claims and runs them; sweeper: takes up
           what an outage or a crash left with no one to run it
"""

from bot.jobs.runner import Job, JobRunner, NotAccepting, Reopen, Replier, exhausted_reason

__all__ = ["Job", "JobRunner", "NotAccepting", "Reopen", "Replier", "exhausted_reason"]
