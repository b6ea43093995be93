"""The scale-out job store: records and idempotency keys in one DynamoDB table, reports in S3.

```
table JOB_TABLE, partition key `pk` (string)
  job#<id>   status, attempt, worker, lease_until, summary_posted, record (JSON), kind,
             created_at, recent_kind (uploads only: the `by_kind` index), expires_at (TTL)
  key#<key>  job_id, expires_at (TTL)
index by_kind: partition `recent_kind`, sort `created_at`: the job API's list of uploads
s3://S3_BUCKET/reports/<job id>.json and reports/<job id>/<file>: each finished job's report
```

Every change that decides something is a conditional write: two `serve` instances that get
the two events of one share race on `key#...` and one wins; two workers that get the same
SQS message race on `attempt`/`lease_until` and one runs it. Items stay far below DynamoDB's
400 KB: the report itself is in S3. boto3 blocks, so each call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from bot.errors import StoreUnavailableError
from bot.store import REPORT_JSON
from bot.store.packing import pack, unpack
from bot.store.records import FINISHED, Claim, Duplicate, JobRecord, JobStatus

T = TypeVar("T")

RECENT_INDEX = "by_kind"
LISTED_KINDS = frozenset({"upload"})  # the job API lists web uploads only
REPORT_PREFIX = "reports/"
CONDITION_FAILED = "ConditionalCheckFailedException"
MIN_UPLOAD_RETENTION_S = 3600.0
# A Slack job's record gets its thread once the start message is posted; a serve that met an
# outage just then saves it when the store is back. The sweeper waits this long before it
# takes one up without its thread (its serve died); the job then opens a thread of its own.
ANNOUNCE_GRACE_S = 600.0  # the page shows a report after its upload: kept an hour


class DynamoJobStore:
    def __init__(
        self,
        *,
        dynamodb: Any,
        table: str,
        s3: Any,
        bucket: str,
        retention_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = dynamodb
        self._table = table
        self._s3 = s3
        self._bucket = bucket
        self._retention_s = retention_s
        self._clock = clock
        # Outages seen by this process: when the current one began, how long the last one
        # lasted and when it ended (monotonic), for the words of a job it made fail.
        # Threads of its own: calls left hanging by a paused DynamoDB (a timeout gives up on
        # them, not their thread) must not take the threads S3, SQS and rendering use.
        self._threads = ThreadPoolExecutor(max_workers=16, thread_name_prefix="dynamodb")
        self.unreachable_since: float | None = None
        self.last_outage_s = 0.0
        self.last_outage_ended = float("-inf")

    async def _run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A boto3 call on a worker thread. An outage (no connection, a timeout, a 5xx,
        throttling past botocore's own retries) is StoreUnavailableError, and its length is
        kept for the words of a job it made fail; an answer (a failed condition, a missing
        key) is the caller's to read."""
        try:
            answer = await asyncio.get_running_loop().run_in_executor(
                self._threads, functools.partial(call, *args, **kwargs)
            )
        except (BotoCoreError, ClientError) as error:
            if isinstance(error, ClientError) and not _outage(error):
                self._reached()
                raise
            if self.unreachable_since is None:
                self.unreachable_since = time.monotonic()
            raise StoreUnavailableError(
                f"the job table {self._table} cannot be reached ({type(error).__name__})"
            ) from error
        self._reached()
        return answer

    def _reached(self) -> None:
        if self.unreachable_since is not None:
            self.last_outage_s = time.monotonic() - self.unreachable_since
            self.last_outage_ended = time.monotonic()
            self.unreachable_since = None

    # -- records ------------------------------------------------------------------------------

    async def add(self, record: JobRecord, *, key_ttl_s: float = 0.0) -> None:
        now = self._clock()
        key = record.idempotency_key
        if key is not None:
            try:
                await self._run(
                    self._db.put_item,
                    TableName=self._table,
                    Item={
                        "pk": _s(f"key#{key}"),
                        "job_id": _s(record.id),
                        "expires_at": _n(now + key_ttl_s),
                    },
                    ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                    ExpressionAttributeValues={":now": _n(now)},
                )
            except ClientError as error:
                if _code(error) != CONDITION_FAILED:
                    raise
                held = await self._run(
                    self._db.get_item,
                    TableName=self._table,
                    Key={"pk": _s(f"key#{key}")},
                    ConsistentRead=True,
                )
                raise Duplicate(held["Item"]["job_id"]["S"]) from None
        item = {
            "pk": _s(f"job#{record.id}"),
            "kind": _s(record.source.kind),
            "created_at": _s(record.created_at.isoformat()),
            "status": _s(record.status.value),
            "attempt": _n(record.attempt),
            "summary_posted": {"BOOL": False},
            "lease_until": _n(0),
            "record": _s(_dumps(record)),
        }
        if record.source.kind in LISTED_KINDS:
            item["recent_kind"] = _s(record.source.kind)
        await self._run(self._db.put_item, TableName=self._table, Item=item)

    async def held_by(self, key: str) -> str | None:
        answer = await self._run(
            self._db.get_item,
            TableName=self._table,
            Key={"pk": _s(f"key#{key}")},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        if item is None or self._expired(item):
            return None
        return str(item["job_id"]["S"])

    async def discard(self, job_id: str) -> None:
        record = await self.get(job_id)
        if record is not None and record.idempotency_key is not None:
            await self._run(
                self._db.delete_item,
                TableName=self._table,
                Key={"pk": _s(f"key#{record.idempotency_key}")},
            )
        await self._run(self._db.delete_item, TableName=self._table, Key=_job_key(job_id))

    async def forget_key(self, key: str, job_id: str) -> None:
        try:
            await self._run(
                self._db.delete_item,
                TableName=self._table,
                Key={"pk": _s(f"key#{key}")},
                ConditionExpression="job_id = :job",
                ExpressionAttributeValues={":job": _s(job_id)},
            )
        except ClientError as error:
            if _code(error) != CONDITION_FAILED:
                raise

    async def save(self, record: JobRecord) -> None:
        values: dict[str, Any] = {
            ":status": _s(record.status.value),
            ":record": _s(_dumps(record)),
        }
        update = "SET #status = :status, #record = :record"
        if record.finished_at is not None:
            update += ", finished_at = :finished, expires_at = :expires"
            values[":finished"] = _n(record.finished_at)
            kept_s = self._retention_s
            if record.source.kind == "upload":
                kept_s = max(kept_s, MIN_UPLOAD_RETENTION_S)
            values[":expires"] = _n(int(record.finished_at + kept_s))
        await self._run(
            self._db.update_item,
            TableName=self._table,
            Key=_job_key(record.id),
            UpdateExpression=update,
            ExpressionAttributeNames={"#status": "status", "#record": "record"},
            ExpressionAttributeValues=values,
        )

    async def save_queued(self, record: JobRecord) -> bool:
        try:
            await self._run(
                self._db.update_item,
                TableName=self._table,
                Key=_job_key(record.id),
                UpdateExpression="SET #record = :record",
                ConditionExpression="#status = :queued AND attribute_not_exists(swept_at)",
                ExpressionAttributeNames={"#status": "status", "#record": "record"},
                ExpressionAttributeValues={
                    ":record": _s(_dumps(record)),
                    ":queued": _s(JobStatus.QUEUED.value),
                },
            )
        except ClientError as error:
            if _code(error) != CONDITION_FAILED:
                raise
            return False
        return True

    async def get(self, job_id: str) -> JobRecord | None:
        answer = await self._run(
            self._db.get_item, TableName=self._table, Key=_job_key(job_id), ConsistentRead=True
        )
        item = answer.get("Item")
        if item is None or self._expired(item):
            return None
        return _record(item)

    async def recent(self, kind: str, limit: int) -> list[JobRecord]:
        if kind not in LISTED_KINDS:
            return []
        answer = await self._run(
            self._db.query,
            TableName=self._table,
            IndexName=RECENT_INDEX,
            KeyConditionExpression="recent_kind = :kind",
            ExpressionAttributeValues={":kind": _s(kind)},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [_record(item) for item in answer.get("Items", []) if not self._expired(item)]

    async def unfinished(self) -> list[JobRecord]:
        # In scale-out the queue keeps unfinished jobs: a message comes back to some worker
        # until its job has ended. Nothing to recover at start.
        return []

    def _expired(self, item: Mapping[str, Any]) -> bool:
        # DynamoDB deletes items past their TTL within a day or two; until then, they are gone.
        expires = item.get("expires_at")
        return expires is not None and float(expires["N"]) <= self._clock()

    # -- running ------------------------------------------------------------------------------

    async def claim(
        self, job_id: str, *, worker: str, lease_s: float, max_attempts: int = 3
    ) -> Claim:
        now = self._clock()
        try:
            answer = await self._run(
                self._db.update_item,
                TableName=self._table,
                Key=_job_key(job_id),
                UpdateExpression=(
                    "SET #status = :running, attempt = attempt + :one, worker = :worker, "
                    "lease_until = :lease"
                ),
                ConditionExpression=(
                    "attribute_exists(pk) AND attempt < :max AND "
                    "(#status = :queued OR (#status = :running AND lease_until <= :now))"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":running": _s(JobStatus.RUNNING.value),
                    ":queued": _s(JobStatus.QUEUED.value),
                    ":one": _n(1),
                    ":worker": _s(worker),
                    ":lease": _n(now + lease_s),
                    ":max": _n(max_attempts),
                    ":now": _n(now),
                },
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if _code(error) != CONDITION_FAILED:
                raise
            return await self._why_not(job_id, now, max_attempts)
        old = answer["Attributes"]
        record = _record(old)
        record.status, record.attempt, record.worker = JobStatus.RUNNING, record.attempt + 1, worker
        return Claim("claimed", record, takeover=old["status"]["S"] == JobStatus.RUNNING.value)

    async def _why_not(self, job_id: str, now: float, max_attempts: int) -> Claim:
        answer = await self._run(
            self._db.get_item, TableName=self._table, Key=_job_key(job_id), ConsistentRead=True
        )
        item = answer.get("Item")
        if item is None:
            return Claim("missing")
        record = _record(item)
        if record.status in FINISHED:
            return Claim("finished", record)
        lease_until = float(item["lease_until"]["N"])
        if record.status is JobStatus.RUNNING and lease_until > now:
            return Claim("busy", record, lease_left_s=lease_until - now)
        if record.attempt >= max_attempts:
            return Claim("exhausted", record)
        return Claim("busy", record)  # changed under us: the message comes back later

    async def renew(self, job_id: str, *, worker: str, lease_s: float) -> bool:
        try:
            await self._run(
                self._db.update_item,
                TableName=self._table,
                Key=_job_key(job_id),
                UpdateExpression="SET lease_until = :lease",
                ConditionExpression="worker = :worker AND #status = :running",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":lease": _n(self._clock() + lease_s),
                    ":worker": _s(worker),
                    ":running": _s(JobStatus.RUNNING.value),
                },
            )
        except ClientError as error:
            if _code(error) != CONDITION_FAILED:
                raise
            return False
        return True

    async def release(self, job_id: str, *, worker: str) -> None:
        record = await self.get(job_id)
        if record is None:
            return
        record.status, record.started_at, record.progress = JobStatus.QUEUED, None, None
        try:
            await self._run(
                self._db.update_item,
                TableName=self._table,
                Key=_job_key(job_id),
                UpdateExpression=(
                    "SET #status = :queued, attempt = attempt - :one, lease_until = :zero, "
                    "#record = :record REMOVE worker"
                ),
                ConditionExpression="worker = :worker AND #status = :running",
                ExpressionAttributeNames={"#status": "status", "#record": "record"},
                ExpressionAttributeValues={
                    ":queued": _s(JobStatus.QUEUED.value),
                    ":running": _s(JobStatus.RUNNING.value),
                    ":one": _n(1),
                    ":zero": _n(0),
                    ":worker": _s(worker),
                    ":record": _s(_dumps(record)),
                },
            )
        except ClientError as error:
            if _code(error) != CONDITION_FAILED:
                raise

    async def mark_summary_posted(self, job_id: str) -> bool:
        try:
            await self._run(
                self._db.update_item,
                TableName=self._table,
                Key=_job_key(job_id),
                UpdateExpression="SET summary_posted = :yes",
                ConditionExpression="summary_posted = :no",
                ExpressionAttributeValues={":yes": {"BOOL": True}, ":no": {"BOOL": False}},
            )
        except ClientError as error:
            if _code(error) != CONDITION_FAILED:
                raise
            return False
        return True

    # -- reports ------------------------------------------------------------------------------

    async def put_artifacts(self, job_id: str, artifacts: Mapping[str, bytes]) -> None:
        for name, data in artifacts.items():
            await self._run(
                self._s3.put_object,
                Bucket=self._bucket,
                Key=_artifact_key(job_id, name),
                Body=pack(data),
            )

    async def artifact(self, job_id: str, name: str) -> bytes | None:
        try:
            answer = await self._run(
                self._s3.get_object, Bucket=self._bucket, Key=_artifact_key(job_id, name)
            )
        except ClientError as error:
            if _code(error) in ("NoSuchKey", "404"):
                return None
            raise
        return unpack(await self._run(answer["Body"].read))

    # -- upkeep -------------------------------------------------------------------------------

    async def drop_report(self, job_id: str) -> None:
        pass  # its record expires at once (TTL: retention 0), its report by the lifecycle rule

    async def prune(
        self, *, finished_before: float, uploads_finished_before: float | None = None
    ) -> int:
        # The table's TTL (expires_at) and a lifecycle rule on reports/ do this (README).
        return 0

    async def writable(self) -> bool:
        try:
            await self._run(
                self._db.put_item,
                TableName=self._table,
                Item={"pk": _s("health#check"), "expires_at": _n(self._clock() + 3600)},
            )
        except (ClientError, StoreUnavailableError):
            return False
        return True

    # -- the sweeper (bot/sweeper.py) ---------------------------------------------------------

    async def take_sweeper_lease(self, holder: str, lease_s: float) -> bool:
        """One sweeper at a time across every serve and worker: the lease is this holder's
        if it is free, lapsed, or already its own."""
        now = self._clock()
        try:
            await self._run(
                self._db.put_item,
                TableName=self._table,
                Item={
                    "pk": _s("sweeper#lease"),
                    "holder": _s(holder),
                    "lease_until": _n(now + lease_s),
                    "expires_at": _n(int(now + 86400)),
                },
                ConditionExpression=(
                    "attribute_not_exists(pk) OR lease_until <= :now OR holder = :holder"
                ),
                ExpressionAttributeValues={":now": _n(now), ":holder": _s(holder)},
            )
        except ClientError as error:
            if _code(error) != CONDITION_FAILED:
                raise
            return False
        return True

    async def stranded(
        self, *, lapsed_before: float, limit: int = 500, max_pages: int = 20
    ) -> list[JobRecord]:
        """Jobs queued or running whose lease lapsed (a queued one: never claimed, or
        handed back) and that were not swept since, before `lapsed_before`, and queued ones
        made before it: a scan, in pages, of at most `limit`."""
        found: list[JobRecord] = []
        start: dict[str, Any] | None = None
        for _ in range(max_pages):
            if len(found) >= limit:
                break
            page = await self._run(
                self._db.scan,
                TableName=self._table,
                FilterExpression=(
                    "begins_with(pk, :job) AND (#status = :queued OR #status = :running) "
                    "AND lease_until < :before AND (attribute_not_exists(swept_at) OR "
                    "swept_at < :before)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":job": _s("job#"),
                    ":queued": _s(JobStatus.QUEUED.value),
                    ":running": _s(JobStatus.RUNNING.value),
                    ":before": _n(lapsed_before),
                },
                **({"ExclusiveStartKey": start} if start else {}),
            )
            for item in page.get("Items", []):
                created = datetime.fromisoformat(item["created_at"]["S"]).timestamp()
                if item["status"]["S"] == JobStatus.QUEUED.value and created >= lapsed_before:
                    continue  # just queued: its message is on its way
                try:
                    record = _record(item)
                except (ValueError, KeyError, TypeError):
                    continue
                unannounced = record.reply.kind == "slack" and record.reply.start_ts is None
                if unannounced and created >= lapsed_before - ANNOUNCE_GRACE_S:
                    continue  # its serve is still saving where its thread is
                found.append(record)
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return found[:limit]

    async def take_up(self, job_id: str, *, lapsed_before: float) -> bool:
        """Mark a job swept, if (atomically) it still is queued or running with no live
        lease since `lapsed_before` and was not swept since: the sweeper's right to queue it
        again, or to fail it. A job a live worker holds (its lease renewed) is never taken."""
        return await self._conditionally(
            job_id,
            "SET swept_at = :now",
            {":now": _n(self._clock())},
            lapsed_before,
        )

    async def fail_stranded(self, job_id: str, *, lapsed_before: float, reason: str) -> bool:
        """Fail a stranded job, if (atomically) it still is stranded: no worker's outcome,
        saved meanwhile, is ever overwritten."""
        record = await self.get(job_id)
        if record is None:
            return False
        record.status, record.error, record.finished_at = (
            JobStatus.FAILED,
            reason,
            self._clock(),
        )
        return await self._conditionally(
            job_id,
            "SET #status = :failed, #record = :record, finished_at = :now, expires_at = :expires",
            {
                ":failed": _s(JobStatus.FAILED.value),
                ":record": _s(_dumps(record)),
                ":now": _n(self._clock()),
                ":expires": _n(int(self._clock() + self._retention_s)),
            },
            lapsed_before,
            names={"#record": "record"},
        )

    async def _conditionally(
        self,
        job_id: str,
        update: str,
        values: dict[str, Any],
        lapsed_before: float,
        names: dict[str, str] | None = None,
    ) -> bool:
        try:
            await self._run(
                self._db.update_item,
                TableName=self._table,
                Key=_job_key(job_id),
                UpdateExpression=update,
                ConditionExpression=(
                    "(#status = :queued OR #status = :running) AND lease_until < :before AND "
                    "(attribute_not_exists(swept_at) OR swept_at < :before)"
                ),
                ExpressionAttributeNames={"#status": "status", **(names or {})},
                ExpressionAttributeValues={
                    ":queued": _s(JobStatus.QUEUED.value),
                    ":running": _s(JobStatus.RUNNING.value),
                    ":before": _n(lapsed_before),
                    **values,
                },
            )
        except ClientError as error:
            if _code(error) != CONDITION_FAILED:
                raise
            return False
        return True

    async def has_room(self) -> bool:
        return True  # DynamoDB and S3 do not fill up

    async def state(self) -> str:
        return "ok" if await self.writable() else "unreachable"

    async def close(self) -> None:
        self._threads.shutdown(wait=False)


def _artifact_key(job_id: str, name: str) -> str:
    if name == REPORT_JSON:
        return f"{REPORT_PREFIX}{job_id}.json"
    return f"{REPORT_PREFIX}{job_id}/{name}"


def _job_key(job_id: str) -> dict[str, Any]:
    return {"pk": _s(f"job#{job_id}")}


def _record(item: Mapping[str, Any]) -> JobRecord:
    record = JobRecord.from_json(json.loads(item["record"]["S"]))
    record.status = JobStatus(item["status"]["S"])
    record.attempt = int(item["attempt"]["N"])
    record.worker = item["worker"]["S"] if "worker" in item else None
    return record


def _dumps(record: JobRecord) -> str:
    return json.dumps(record.to_json(), ensure_ascii=False)


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": str(Decimal(str(value)))}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


_THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "SlowDown",
    }
)


def _outage(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return _code(error) in _THROTTLED or int(status or 0) >= 500
