"""Slack listeners, one module per surface. Each acks, turns the payload into values and
hands off to SlackJobs; none does the work itself."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.intake import SlackJobs
from bot.slack.listeners import commands, files

# The bot events these listeners handle; manifest.yml must subscribe to exactly these.
HANDLED_EVENTS = frozenset({*files.EVENTS})
COMMANDS = frozenset({*commands.COMMANDS})


def register(app: AsyncApp, slack_jobs: SlackJobs) -> None:
    files.register(app, slack_jobs)
    commands.register(app, slack_jobs)
