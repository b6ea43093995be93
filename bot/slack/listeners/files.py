"""CSV files shared in a channel: `file_shared` and `message` (subtype `file_share`).

Slack sends both for one upload, and `message.channels` / `message.groups` deliver every
other message too: each must be handled (acked), or Slack retries it.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from bot.slack.intake import SlackContext, SlackJobs

EVENTS = ("file_shared", "message.channels", "message.groups")


def context_of(context: AsyncBoltContext) -> SlackContext:
    return SlackContext(bot_user_id=context.bot_user_id, bot_id=context.bot_id)


def register(app: AsyncApp, slack_jobs: SlackJobs) -> None:
    @app.event("file_shared")
    async def on_file_shared(event: dict[str, Any], context: AsyncBoltContext) -> None:
        channel = event.get("channel_id")
        if not channel or not event.get("file_id"):
            return  # shared privately: nowhere to report to
        await slack_jobs.on_share(
            file_id=event["file_id"],
            channel=channel,
            user=event.get("user_id"),
            context=context_of(context),
        )

    @app.event("message")
    async def on_message(event: dict[str, Any], context: AsyncBoltContext) -> None:
        if event.get("subtype") != "file_share" or not event.get("channel"):
            return
        for file in event.get("files") or []:
            if file.get("id"):
                await slack_jobs.on_share(
                    file_id=file["id"],
                    channel=event["channel"],
                    user=event.get("user"),
                    context=context_of(context),
                    file=file,
                )
