"""`/process-events [help | <file link or ID> | s3://bucket/key]`."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.context.async_context import AsyncBoltContext

from bot.slack.intake import SlackJobs
from bot.slack.listeners.files import context_of

COMMANDS = ("/process-events",)


def register(app: AsyncApp, slack_jobs: SlackJobs) -> None:
    @app.command("/process-events")
    async def on_process_events(
        ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext
    ) -> None:
        await ack()  # Slack gives us 3 seconds; the work happens after

        async def reply(text: str) -> None:
            await respond(text=text, response_type="ephemeral", replace_original=False)

        await slack_jobs.on_command(
            text=command.get("text") or "",
            channel=command["channel_id"],
            user=command["user_id"],
            context=context_of(context),
            respond=reply,
        )
