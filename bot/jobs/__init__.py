"""Jobs: a file (a source) and where to tell people (a replier) become a report.

job        Job, and the seams the runner works through: Replier, Reopen
runner     JobRunner: records, queues and runs jobs in this process; recovery after a restart
outcome    how a job ends: report kept, record saved through an outage, replies, metrics
replies    the console's replier and the silent one (Slack's is bot.slack.replier)
slots      how many analyses run at once; read_ahead: an upload's bytes ahead of the engine
reopen     a job's source and replier again from its record (a restart, another worker)
queue      scale-out: job ids over SQS; worker: claims and runs them; sweeper: takes up
           what an outage or a crash left with no one to run it
"""

from bot.jobs.job import Job, Reopen, Replier
from bot.jobs.runner import JobRunner

__all__ = ["Job", "JobRunner", "Reopen", "Replier"]
