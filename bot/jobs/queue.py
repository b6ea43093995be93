"""The job queue for scale-out: SQS carries job ids from `serve` to the workers.

A message is only an id: the record is in the job store. Delivery is at least once; the
store's conditional claim makes a second delivery harmless. A message that cannot be read
is left alone, so the queue's redrive policy moves it to the dead-letter queue after three
receives (README).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger("bot.queue")

MAX_BATCH = 10  # SQS's own limit per receive


@dataclass(frozen=True, slots=True)
class QueueMessage:
    job_id: str
    receipt: str
    receive_count: int


class JobQueue:
    def __init__(self, client: Any, url: str) -> None:
        self._client = client
        self.url = url

    async def send(self, job_id: str) -> None:
        await asyncio.to_thread(
            self._client.send_message, QueueUrl=self.url, MessageBody=json.dumps({"job_id": job_id})
        )

    async def receive(self, wanted: int, wait_s: int) -> list[QueueMessage]:
        answer = await asyncio.to_thread(
            self._client.receive_message,
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(wanted, MAX_BATCH)),
            WaitTimeSeconds=wait_s,
            AttributeNames=["ApproximateReceiveCount"],
        )
        messages = []
        for raw in answer.get("Messages", []):
            try:
                job_id = str(json.loads(raw["Body"])["job_id"])
            except (ValueError, KeyError, TypeError):
                log.warning("queue.unreadable_message", message_id=raw.get("MessageId"))
                continue
            count = int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            messages.append(QueueMessage(job_id, raw["ReceiptHandle"], count))
        return messages

    async def extend(self, message: QueueMessage, seconds: float) -> None:
        """Keep the message hidden this long from now (0: visible again at once)."""
        await asyncio.to_thread(
            self._client.change_message_visibility,
            QueueUrl=self.url,
            ReceiptHandle=message.receipt,
            VisibilityTimeout=max(0, min(int(seconds), 43_200)),
        )

    async def delete(self, message: QueueMessage) -> None:
        await asyncio.to_thread(
            self._client.delete_message, QueueUrl=self.url, ReceiptHandle=message.receipt
        )

    async def dead_letter_queue(self) -> JobQueue | None:
        """The queue's dead-letter queue, from its redrive policy (None without one)."""
        answer = await asyncio.to_thread(
            self._client.get_queue_attributes, QueueUrl=self.url, AttributeNames=["RedrivePolicy"]
        )
        policy = answer.get("Attributes", {}).get("RedrivePolicy")
        if not policy:
            return None
        name = str(json.loads(policy)["deadLetterTargetArn"]).rsplit(":", 1)[-1]
        found = await asyncio.to_thread(self._client.get_queue_url, QueueName=name)
        return JobQueue(self._client, found["QueueUrl"])

    async def counts(self) -> tuple[int, int]:
        """Messages waiting (visible) and being worked on (in flight)."""
        answer = await asyncio.to_thread(
            self._client.get_queue_attributes,
            QueueUrl=self.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )
        attributes = answer.get("Attributes", {})
        return (
            int(attributes.get("ApproximateNumberOfMessages", 0)),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )
