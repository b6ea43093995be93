"""Wiring: one asyncio process runs the Socket Mode bot, the web app and the job runner.

`start_service()` builds and connects everything inside the running loop (the Socket Mode
client needs one), `Service.stop()` drains, and `serve()` runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

import aiohttp
import structlog
from aiohttp import web as aioweb
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import web
from bot.aws import make_client as make_aws_client
from bot.aws import s3
from bot.config import Settings
from bot.jobs.job import Replier
from bot.jobs.queue import JobQueue
from bot.jobs.reopen import Reopener
from bot.jobs.replies import ConsoleReplier
from bot.jobs.runner import JobRunner
from bot.jobs.sweeper import Sweeper
from bot.jobs.worker import Worker
from bot.metrics import Metrics
from bot.report import chart
from bot.slack import listeners
from bot.slack.api import slack_client
from bot.slack.files import SlackDownloader
from bot.slack.intake import SlackJobs
from bot.slack.replier import SlackReplier
from bot.sources import S3Reader
from bot.store import JobStore
from bot.store.dynamo import DynamoJobStore
from bot.store.lock import DataDirLock
from bot.store.sqlite import SqliteJobStore
from bot.web import staging

log = structlog.get_logger("bot.app")

SlackState = Literal["connected", "disconnected", "disabled"]
CONNECTION_CHECK_S = 5.0


class SlackConnection:
    """The Socket Mode handler, and how long the socket has been down (for /health)."""

    def __init__(
        self,
        app: AsyncApp,
        handler: AsyncSocketModeHandler,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.handler = handler
        self.clock = clock
        self.down_since: float | None = None
        self._watch: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await self.handler.connect_async()  # type: ignore[no-untyped-call]
        self._watch = asyncio.create_task(self._watch_connection())

    async def state(self) -> SlackState:
        connected = await self.handler.client.is_connected()
        self._note(connected)
        return "connected" if connected else "disconnected"

    def down_for_s(self) -> float:
        return 0.0 if self.down_since is None else self.clock() - self.down_since

    def _note(self, connected: bool) -> None:
        if connected:
            self.down_since = None
        elif self.down_since is None:
            self.down_since = self.clock()

    async def _watch_connection(self) -> None:
        while True:
            await asyncio.sleep(CONNECTION_CHECK_S)
            with contextlib.suppress(Exception):
                self._note(await self.handler.client.is_connected())

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        with contextlib.suppress(Exception):
            await self.handler.close_async()  # type: ignore[no-untyped-call]


Role = Literal["serve", "worker"]
QUEUE_METRICS_EVERY_S = 15.0


@dataclass(kw_only=True)
class Service:
    settings: Settings
    jobs: JobRunner
    metrics: Metrics
    session: aiohttp.ClientSession
    web_runner: aioweb.AppRunner
    port: int
    slack: SlackConnection | None = None
    worker: Worker | None = None
    sweeper: Sweeper | None = None
    lock: DataDirLock | None = None
    background: list[asyncio.Task[None]] = field(default_factory=list)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def slack_state(self) -> SlackState:
        return await _state(self.slack)

    async def stop(self) -> None:
        """Stop taking work, let running jobs finish within the grace period, then close."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        log.info("service.stopping", jobs_active=self.jobs.active)
        for task in self.background:
            task.cancel()
        if self.sweeper is not None:
            await self.sweeper.stop()
        if self.worker is not None:
            self.jobs.accepting = False
            await self.worker.stop(self.settings.shutdown_grace_s)
        await self.jobs.shutdown(self.settings.shutdown_grace_s)
        if self.slack is not None:
            await self.slack.close()
        await self.web_runner.cleanup()
        await self.jobs.store.close()
        await self.session.close()
        if self.lock is not None:
            self.lock.release()
        log.info("service.stopped")


def _store(settings: Settings, s3_client: Any) -> JobStore:
    """The job store the settings ask for: DynamoDB + S3 in scale-out, else SQLite in
    DATA_DIR (in memory without one)."""
    if settings.scale_out:
        assert settings.job_table is not None and settings.s3_bucket is not None
        return DynamoJobStore(
            dynamodb=make_aws_client("dynamodb", settings.aws_region),
            table=settings.job_table,
            s3=s3_client,
            bucket=settings.s3_bucket,
            retention_s=settings.job_retention_s,
        )
    return SqliteJobStore(
        settings.data_dir,
        min_free_bytes=settings.store_min_free_bytes,
        max_bytes=settings.store_max_bytes,
    )


async def start_service(
    settings: Settings, *, console: TextIO | None = None, role: Role = "serve"
) -> Service:
    """`serve`: Socket Mode, the web app, and jobs (run here, or queued for workers in
    scale-out). `worker` (scale-out only): jobs from the queue, and /health and /metrics."""
    metrics = Metrics()
    for notice in settings.notices:
        log.warning("config.notice", notice=notice)
    lock = None
    if role == "serve" and not settings.scale_out and settings.data_dir is not None:
        # Before the store is read: recovery takes up only what no live serve holds.
        lock = DataDirLock(settings.data_dir)
        await lock.acquire(settings.store_lock_wait_s)
    try:
        return await _start_service(settings, metrics, lock, console=console, role=role)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


@dataclass(frozen=True, slots=True)
class _Clients:
    """What the service talks to outside itself, made once from the settings."""

    session: aiohttp.ClientSession
    s3: Any  # None without S3 settings
    s3_reader: S3Reader | None
    slack: AsyncWebClient | None  # None in local mode
    downloader: SlackDownloader | None
    queue: JobQueue | None  # scale-out only
    console: TextIO


def _clients(settings: Settings, metrics: Metrics, console: TextIO | None) -> _Clients:
    session = aiohttp.ClientSession()
    s3_client = None
    if settings.s3_allowed_buckets or settings.s3_bucket:
        s3_client = s3.make_client(settings.aws_region)
    s3_reader = None
    if s3_client is not None:
        s3_reader = S3Reader(
            s3_client,
            allowed_buckets=settings.s3_allowed_buckets,
            max_size_bytes=settings.max_file_size_bytes,
        )
    client = downloader = None
    if settings.slack is not None:
        client = slack_client(settings.slack.bot_token, settings.slack_api_url, metrics)
        downloader = SlackDownloader(session, settings.slack.bot_token, settings.slack_api_url)
    queue = None
    if settings.job_queue_url is not None:
        queue = JobQueue(make_aws_client("sqs", settings.aws_region), settings.job_queue_url)
    return _Clients(
        session=session,
        s3=s3_client,
        s3_reader=s3_reader,
        slack=client,
        downloader=downloader,
        queue=queue,
        console=console if console is not None else sys.stdout,
    )


def _runner(settings: Settings, clients: _Clients, metrics: Metrics, role: Role) -> JobRunner:
    reopen = Reopener(
        currency=settings.currency,
        max_file_size_bytes=settings.max_file_size_bytes,
        slack_client=clients.slack,
        downloader=clients.downloader,
        s3_client=clients.s3,
        allowed_buckets=settings.s3_allowed_buckets,
        keep_uploads=settings.s3_keep_uploads,
        console=clients.console,
    )
    store = _store(settings, clients.s3)
    if isinstance(store, SqliteJobStore):
        store.on_skipped = metrics.store_records_skipped.inc
    queue = clients.queue
    return JobRunner(
        store=store,
        reopen=reopen,
        enqueue=queue.send if queue is not None and role == "serve" else None,
        concurrency=settings.job_concurrency,
        progress_interval_s=settings.progress_interval_s,
        timezone=settings.report_timezone,
        currency=settings.currency,
        max_file_size_bytes=settings.max_file_size_bytes,
        uploads_in_flight=settings.uploads_in_flight,
        retention_s=settings.job_retention_s,
        durable=settings.scale_out or settings.data_dir is not None,
        metrics=metrics,
        # A worker holds its job's message while the store is away: it waits it out.
        store_patience_s=None if settings.scale_out else 60.0,
    )


def _slack_connection(
    settings: Settings, clients: _Clients, jobs: JobRunner, metrics: Metrics
) -> SlackConnection | None:
    """Socket Mode and the listeners, for a serve with Slack tokens."""
    if settings.slack is None or clients.slack is None or clients.downloader is None:
        return None
    bolt = AsyncApp(
        token=settings.slack.bot_token,
        client=clients.slack,
        logger=logging.getLogger("slack_bolt"),
    )
    slack_jobs = SlackJobs(
        client=clients.slack,
        downloader=clients.downloader,
        jobs=jobs,
        currency=settings.currency,
        max_file_size_bytes=settings.max_file_size_bytes,
        s3_reader=clients.s3_reader,
    )
    listeners.register(bolt, slack_jobs)
    handler = AsyncSocketModeHandler(
        bolt,
        settings.slack.app_token,
        web_client=slack_client(None, settings.slack_api_url, metrics),
    )
    return SlackConnection(bolt, handler)


def _web_context(
    settings: Settings,
    clients: _Clients,
    jobs: JobRunner,
    metrics: Metrics,
    slack: SlackConnection | None,
) -> web.WebContext:
    def upload_replier() -> Replier | None:
        if clients.slack is not None and settings.slack_channel:
            return SlackReplier(clients.slack, settings.slack_channel, currency=settings.currency)
        if settings.slack is None:
            return ConsoleReplier(settings.currency, clients.console)
        return None

    return web.WebContext(
        settings=settings,
        jobs=jobs,
        metrics=metrics,
        slack_state=lambda: _state(slack),
        slack_down_for_s=lambda: slack.down_for_s() if slack is not None else 0.0,
        upload_replier=upload_replier,
        s3_client=clients.s3,
    )


def _scale_out_parts(
    settings: Settings, jobs: JobRunner, queue: JobQueue | None, metrics: Metrics, role: Role
) -> tuple[Worker | None, Sweeper | None]:
    """The worker (in a worker, or a serve with WORKERS_IN_SERVE) and the sweeper (in
    every scale-out process)."""
    if queue is None or jobs.reopen is None:
        return None, None
    worker = None
    if role == "worker" or settings.workers_in_serve:
        worker = Worker(
            runner=jobs,
            queue=queue,
            reopen=jobs.reopen,
            concurrency=settings.job_concurrency,
            metrics=metrics,
            lease_s=settings.worker_lease_s,
            renew_every_s=settings.worker_lease_s / 3,
        )
    sweeper = None
    if isinstance(jobs.store, DynamoJobStore):
        sweeper = Sweeper(
            runner=jobs,
            store=jobs.store,
            queue=queue,
            reopen=jobs.reopen,
            metrics=metrics,
            lease_s=settings.worker_lease_s,
            interval_s=settings.sweep_interval_s,
        )
    return worker, sweeper


async def _start_service(
    settings: Settings,
    metrics: Metrics,
    lock: DataDirLock | None,
    *,
    console: TextIO | None,
    role: Role,
) -> Service:
    clients = _clients(settings, metrics, console)
    jobs = _runner(settings, clients, metrics, role)
    try:
        await jobs.start()  # opens the store: a damaged or unwritable one stops here
    except BaseException:
        await jobs.store.close()
        await clients.session.close()
        raise
    slack = _slack_connection(settings, clients, jobs, metrics) if role == "serve" else None
    context = _web_context(settings, clients, jobs, metrics, slack)
    try:
        web_runner, port = await web.start(context, ops_only=role == "worker")
    except BaseException:  # e.g. the port is taken: close what was opened, then say why
        await jobs.shutdown(0)
        if slack is not None:
            await slack.close()
        await jobs.store.close()
        await clients.session.close()
        raise
    worker, sweeper = _scale_out_parts(settings, jobs, clients.queue, metrics, role)
    service = Service(
        settings=settings,
        jobs=jobs,
        metrics=metrics,
        session=clients.session,
        web_runner=web_runner,
        port=port,
        slack=slack,
        worker=worker,
        sweeper=sweeper,
        lock=lock,
    )
    try:
        recovered = await _begin(service, context, clients, role)
    except BaseException:
        await service.stop()
        raise
    log.info(
        "service.started",
        mode=_mode(settings, role),
        role=role,
        url=f"http://{_url_host(settings.host)}:{port}/",
        job_concurrency=settings.job_concurrency,
        recovered=recovered,
        store="dynamodb" if settings.scale_out else str(settings.data_dir or "memory"),
        event_loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
    )
    return service


async def _begin(service: Service, context: web.WebContext, clients: _Clients, role: Role) -> int:
    """Connect, recover what a previous process left, and start the background work;
    the number of jobs recovered."""
    settings = service.settings
    if clients.queue is not None:
        service.background.append(asyncio.create_task(_count_queue(clients.queue, service.metrics)))
    service.background.append(asyncio.create_task(_warm_up_chart()))
    if service.slack is not None:
        await service.slack.connect()
    recovered = await service.jobs.recover()
    if role == "serve" and settings.s3_bucket is not None and clients.s3 is not None:
        # After recovery, which has failed what a killed process left staging here.
        service.background.append(asyncio.create_task(staging.sweep_now_and_then(context)))
    if service.worker is not None:
        service.worker.start()
    if service.sweeper is not None:
        service.sweeper.start()
    return recovered


def _mode(settings: Settings, role: Role) -> str:
    if role == "worker":
        return "worker"
    return "slack" if settings.slack is not None else "local"


async def _warm_up_chart() -> None:
    try:
        await asyncio.to_thread(chart.warm_up)
    except Exception as error:  # the first chart only loses its head start
        log.warning("chart.warm_up_failed", error=type(error).__name__)


async def _count_queue(queue: JobQueue, metrics: Metrics) -> None:
    """clinic_events_queue_messages from the queue's own attributes, now and then."""
    while True:
        try:
            visible, in_flight = await queue.counts()
            metrics.queue_messages.labels("visible").set(visible)
            metrics.queue_messages.labels("in_flight").set(in_flight)
        except Exception as error:
            log.warning("queue.count_failed", error=type(error).__name__)
        await asyncio.sleep(QUEUE_METRICS_EVERY_S)


async def _state(slack: SlackConnection | None) -> SlackState:
    return "disabled" if slack is None else await slack.state()


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"  # listening everywhere; this address works from the same machine
    return f"[{host}]" if ":" in host else host


@contextlib.asynccontextmanager
async def running(
    settings: Settings, *, console: TextIO | None = None, role: Role = "serve"
) -> AsyncIterator[Service]:
    service = await start_service(settings, console=console, role=role)
    try:
        yield service
    finally:
        await service.stop()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The service's event loop: uvloop's where it is installed (everywhere but Windows).

    Its sockets, timers and thread-safe calls run in C, which leaves more of the GIL to the
    engine's threads during a large upload (bench/README.md has the figures).
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def serve(settings: Settings, role: Role = "serve") -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running(settings, role=role) as service:
        # Everything loaded so far (Slack, aiohttp, boto3, matplotlib) lives as long as the
        # process: out of the collector's sight, a full collection triggered by a big report
        # walks only the report's objects, not the libraries' (bench/README.md: GC pauses).
        gc.freeze()
        if service.slack is None and role == "serve":
            print(
                f"Local mode (no Slack tokens): upload a CSV at http://{_url_host(settings.host)}:{service.port}/ "
                "or run `clinic-events report FILE`. Ctrl-C stops.",
                flush=True,
            )
        await stop.wait()
        log.info("service.signal_received")
