"""Settings: every knob of `clinic-events serve`, read once from the environment.

Only `Settings.from_env` reads the environment; tests pass a dict. A bad value raises
ConfigError naming the variable, never echoing a secret.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from bot.errors import ConfigError, UnknownCurrencyError
from bot.report.currency import parse_currency
from processing import known_timezone

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATA_DIR = ".clinic-events"
LOG_LEVELS = ("debug", "info", "warning", "error")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True, slots=True)
class SlackTokens:
    bot_token: str = field(repr=False)
    app_token: str = field(repr=False)


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """FORWARDED_ALLOW_IPS: the proxies whose X-Forwarded-For / Forwarded name the client
    (uvicorn's and gunicorn's convention). Empty: none, the peer is the client."""

    networks: tuple[IPNetwork, ...] = ()
    any: bool = False  # "*": whoever connects is a proxy

    def trusts(self, address: str | None) -> bool:
        if self.any:
            return True
        if address is None or not self.networks:
            return False
        try:
            ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    slack: SlackTokens | None = None  # None: local mode, messages go to the console
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_channel: str | None = None  # where web uploads are reported in Slack mode
    progress_interval_s: float = 10.0
    max_file_size_bytes: int = 1024 * 1_048_576
    job_concurrency: int = 2
    job_retention_s: float = 30 * 86400.0
    data_dir: Path | None = None  # None: jobs in memory only (from_env defaults to a folder)
    store_lock_wait_s: float = 60.0  # a second serve on DATA_DIR waits this long, then stops
    store_min_free_bytes: int = 256 * 1_048_576  # below it: no new jobs, /health 503; 0: off
    store_max_bytes: int = 2048 * 1_048_576  # the oldest finished reports go past it
    job_queue_url: str | None = None  # scale-out: with job_table and s3_bucket
    job_table: str | None = None
    workers_in_serve: bool = False
    worker_lease_s: float = 180.0  # a claim lapses this long after its last renewal
    sweep_interval_s: float = 30.0  # scale-out: how often stranded jobs are looked for
    report_timezone: str = "UTC"
    currency: str = "USD"
    host: str = "127.0.0.1"
    port: int = 3000
    upload_token: str | None = field(default=None, repr=False)
    allow_unauthenticated_uploads: bool = False
    uploads_per_minute: int = 10
    upload_idle_timeout_s: float = 30.0
    uploads_in_flight: int = 8  # bodies arriving at once, all clients together
    upload_max_s: float = 3600.0  # of the client's time, from its first byte
    upload_min_bytes_per_s: int = 10240  # averaged over upload_rate_window_s; 0: no minimum
    upload_rate_window_s: float = 60.0
    trusted_proxies: TrustedProxies = field(default_factory=lambda: TrustedProxies())
    job_api_per_minute: int = 120
    public_url: str | None = None  # where people reach the page, when not on loopback
    s3_bucket: str | None = None
    s3_allowed_buckets: frozenset[str] = frozenset()
    s3_keep_uploads: bool = False
    aws_region: str | None = None  # AWS_REGION; botocore itself reads only AWS_DEFAULT_REGION
    shutdown_grace_s: float = 30.0
    log_format: Literal["json", "console"] | None = None  # None: console on a terminal
    log_level: str = "info"
    # Said once at start (deprecated settings still honoured), never an error.
    notices: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Self:
        read = _Reader(env)
        s3_bucket = read.text("S3_BUCKET")
        notices: list[str] = []
        retention_s = read.number("JOB_RETENTION_DAYS", 30, minimum=0) * 86400
        if read.text("JOB_RETENTION_MINUTES") is not None:
            if read.text("JOB_RETENTION_DAYS") is not None:
                raise ConfigError(
                    "set JOB_RETENTION_DAYS or the older JOB_RETENTION_MINUTES, not both"
                )
            retention_s = read.number("JOB_RETENTION_MINUTES", 60, minimum=0) * 60
            notices.append(
                "JOB_RETENTION_MINUTES is deprecated: use JOB_RETENTION_DAYS "
                f"(honoured as {retention_s / 86400:g} days)"
            )
        settings = cls(
            slack=_slack_tokens(read),
            slack_api_url=_api_url(read.text("SLACK_API_URL") or DEFAULT_SLACK_API_URL),
            slack_channel=_channel_id(read.text("SLACK_CHANNEL")),
            progress_interval_s=read.number("PROGRESS_INTERVAL_SECONDS", 10.0, minimum=0.05),
            max_file_size_bytes=round(
                read.number("MAX_FILE_SIZE_MB", 1024, minimum=1e-6) * 1_048_576
            ),
            job_concurrency=read.integer("JOB_CONCURRENCY", 2, minimum=1),
            job_retention_s=retention_s,
            data_dir=Path(read.text("DATA_DIR") or DEFAULT_DATA_DIR),
            store_lock_wait_s=read.number("STORE_LOCK_WAIT_SECONDS", 60, minimum=0),
            store_min_free_bytes=round(
                read.number("STORE_MIN_FREE_MB", 256, minimum=0) * 1_048_576
            ),
            store_max_bytes=round(read.number("STORE_MAX_MB", 2048, minimum=1) * 1_048_576),
            job_queue_url=read.text("JOB_QUEUE_URL"),
            job_table=read.text("JOB_TABLE"),
            workers_in_serve=read.flag("WORKERS_IN_SERVE"),
            worker_lease_s=read.number("WORKER_LEASE_SECONDS", 180, minimum=3),
            sweep_interval_s=read.number("SWEEP_INTERVAL_SECONDS", 30, minimum=0.1),
            report_timezone=_timezone(read.text("REPORT_TIMEZONE") or "UTC"),
            currency=_currency(read.text("CURRENCY") or "USD"),
            host=read.text("HOST") or "127.0.0.1",
            port=read.integer("PORT", 3000, minimum=0, maximum=65535),
            upload_token=read.text("UPLOAD_TOKEN"),
            allow_unauthenticated_uploads=read.flag("ALLOW_UNAUTHENTICATED_UPLOADS"),
            uploads_per_minute=read.integer("UPLOADS_PER_MINUTE", 10, minimum=1),
            upload_idle_timeout_s=read.number("UPLOAD_IDLE_TIMEOUT_SECONDS", 30, minimum=1),
            uploads_in_flight=read.integer("UPLOADS_IN_FLIGHT", 8, minimum=1),
            upload_max_s=read.number("UPLOAD_MAX_SECONDS", 3600, minimum=1),
            upload_min_bytes_per_s=read.integer("UPLOAD_MIN_BYTES_PER_SECOND", 10240, minimum=0),
            upload_rate_window_s=read.number("UPLOAD_RATE_WINDOW_SECONDS", 60, minimum=1),
            trusted_proxies=_trusted_proxies(read.text("FORWARDED_ALLOW_IPS")),
            job_api_per_minute=read.integer("JOB_API_PER_MINUTE", 120, minimum=1),
            public_url=_public_url(read.text("PUBLIC_URL")),
            s3_bucket=s3_bucket,
            s3_allowed_buckets=allowed_buckets_from_env(env),
            s3_keep_uploads=read.flag("S3_KEEP_UPLOADS"),
            aws_region=read.text("AWS_REGION"),
            shutdown_grace_s=read.number("SHUTDOWN_GRACE_SECONDS", 30, minimum=0),
            log_format=read.choice("LOG_FORMAT", ("json", "console")),  # type: ignore[arg-type]
            log_level=read.choice("LOG_LEVEL", LOG_LEVELS) or "info",
            notices=tuple(notices),
        )
        _check_scale_out(settings)
        if (
            not is_loopback(settings.host)
            and settings.upload_token is None
            and not settings.allow_unauthenticated_uploads
        ):
            raise ConfigError(
                f"HOST={settings.host} accepts uploads from other machines: set UPLOAD_TOKEN, "
                "or ALLOW_UNAUTHENTICATED_UPLOADS=true if a proxy in front checks who uploads"
            )
        return settings

    @property
    def slack_mode(self) -> bool:
        return self.slack is not None

    @property
    def scale_out(self) -> bool:
        """Jobs go through an SQS queue to workers; records in DynamoDB, files in S3."""
        return self.job_queue_url is not None


def _check_scale_out(settings: Settings) -> None:
    wanted = {
        "JOB_QUEUE_URL": settings.job_queue_url,
        "JOB_TABLE": settings.job_table,
        "S3_BUCKET": settings.s3_bucket,
    }
    if settings.job_queue_url is None and settings.job_table is None:
        if settings.workers_in_serve:
            raise ConfigError("WORKERS_IN_SERVE needs JOB_QUEUE_URL, JOB_TABLE and S3_BUCKET")
        return
    missing = [name for name, value in wanted.items() if value is None]
    if missing:
        raise ConfigError(
            "scale-out needs JOB_QUEUE_URL, JOB_TABLE and S3_BUCKET together; missing: "
            + ", ".join(missing)
        )


def allowed_buckets_from_env(env: Mapping[str, str]) -> frozenset[str]:
    """S3_ALLOWED_BUCKETS (comma-separated), else S3_BUCKET alone. The CLI reads it too,
    without the rest of Settings (which checks server-only variables such as HOST)."""
    allowed = env.get("S3_ALLOWED_BUCKETS", "").strip()
    if allowed:
        return frozenset(name.strip() for name in allowed.split(",") if name.strip())
    bucket = env.get("S3_BUCKET", "").strip()
    return frozenset({bucket}) if bucket else frozenset()


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def number(self, name: str, default: float, *, minimum: float) -> float:
        raw = self.text(name)
        if raw is None:
            return float(default)
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, e.g. {default:g}") from None
        if not value >= minimum or value == float("inf"):
            raise ConfigError(f"{name} must be a number of at least {minimum:g}")
        return value

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, e.g. {default}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = (
                f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            )
            raise ConfigError(f"{name} must be {bound}")
        return value

    def flag(self, name: str) -> bool:
        raw = self._env.get(name, "").strip().lower()
        if raw in TRUE_WORDS:
            return True
        if raw in FALSE_WORDS:
            return False
        raise ConfigError(f"{name} must be true or false")

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        if raw.lower() not in choices:
            raise ConfigError(f"{name} must be one of: {', '.join(choices)}")
        return raw.lower()


def _slack_tokens(read: _Reader) -> SlackTokens | None:
    bot, app = read.text("SLACK_BOT_TOKEN"), read.text("SLACK_APP_TOKEN")
    if bot is None and app is None:
        return None
    if bot is None:
        raise ConfigError(
            "SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is missing: set both for Slack, or neither for local mode"
        )
    if app is None:
        raise ConfigError(
            "SLACK_BOT_TOKEN is set but SLACK_APP_TOKEN is missing: set both for Slack, or neither for local mode"
        )
    if not bot.startswith("xoxb-"):
        raise ConfigError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
    if not app.startswith("xapp-"):
        raise ConfigError(
            "SLACK_APP_TOKEN must be an app-level token starting with xapp- (with connections:write)"
        )
    return SlackTokens(bot_token=bot, app_token=app)


def _channel_id(channel: str | None) -> str | None:
    if channel is not None and not re.fullmatch(r"[CG][A-Z0-9]{6,}", channel):
        raise ConfigError(
            "SLACK_CHANNEL must be a channel ID such as C0123ABCDEF, not a name "
            "(in Slack: channel details, at the bottom)"
        )
    return channel


def _api_url(url: str) -> str:
    if not url.startswith(("https://", "http://")):
        raise ConfigError("SLACK_API_URL must be an http(s) URL such as https://slack.com/api/")
    return url if url.endswith("/") else url + "/"


def _public_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("PUBLIC_URL must be an http(s) URL such as https://reports.example.com/")
    return url


def _trusted_proxies(value: str | None) -> TrustedProxies:
    if value is None:
        return TrustedProxies()
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    if "*" in entries:
        return TrustedProxies(any=True)
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigError(
                "FORWARDED_ALLOW_IPS must be a comma-separated list of addresses or networks "
                "(e.g. 10.0.0.5,172.16.0.0/12), or * for any"
            ) from None
    return TrustedProxies(tuple(networks))


def _timezone(name: str) -> str:
    if not known_timezone(name):
        raise ConfigError("REPORT_TIMEZONE must be an IANA timezone such as Europe/Berlin")
    return name


def _currency(code: str) -> str:
    try:
        return parse_currency(code)
    except UnknownCurrencyError:
        raise ConfigError("CURRENCY must be an ISO 4217 code such as USD") from None
