"""Slack: the Web API client, the listeners, shares and commands made jobs, the
replier that tells a job's thread how it goes, Block Kit messages and file downloads."""
