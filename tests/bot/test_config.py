"""Settings.from_env: defaults, each variable, and errors that name the variable, not secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings, is_loopback
from bot.errors import ConfigError

BOT, APP = "xoxb-secret-bot-1234", "xapp-secret-app-5678"


def test_no_variables_means_local_mode_with_the_documented_defaults() -> None:
    """An empty environment runs locally on 127.0.0.1:3000."""
    settings = Settings.from_env({})
    assert settings.slack is None
    assert not settings.slack_mode
    assert (settings.host, settings.port) == ("127.0.0.1", 3000)
    assert settings.progress_interval_s == 10.0
    assert settings.max_file_size_bytes == 1024 * 1024 * 1024
    assert settings.job_concurrency == 2
    assert settings.job_retention_s == 30 * 86400
    assert settings.data_dir == Path(".clinic-events")
    assert not settings.scale_out
    assert not settings.workers_in_serve
    assert settings.uploads_per_minute == 10
    assert settings.shutdown_grace_s == 30
    assert (settings.report_timezone, settings.currency) == ("UTC", "USD")
    assert settings.slack_api_url == "https://slack.com/api/"


def test_both_tokens_mean_slack_mode_and_are_never_in_the_repr() -> None:
    """Secrets stay out of repr (and so out of logs)."""
    settings = Settings.from_env(
        {"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP, "UPLOAD_TOKEN": "up-secret"}
    )
    assert settings.slack is not None
    assert settings.slack.bot_token == BOT
    text = repr(settings)
    assert BOT not in text
    assert APP not in text
    assert "up-secret" not in text


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLACK_BOT_TOKEN": BOT}, "SLACK_APP_TOKEN is missing"),
        ({"SLACK_APP_TOKEN": APP}, "SLACK_BOT_TOKEN is missing"),
        ({"SLACK_BOT_TOKEN": "xoxp-user", "SLACK_APP_TOKEN": APP}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": "xoxb-wrong"}, "SLACK_APP_TOKEN"),
        ({"PROGRESS_INTERVAL_SECONDS": "soon"}, "PROGRESS_INTERVAL_SECONDS"),
        ({"PROGRESS_INTERVAL_SECONDS": "0"}, "PROGRESS_INTERVAL_SECONDS"),
        ({"MAX_FILE_SIZE_MB": "-1"}, "MAX_FILE_SIZE_MB"),
        ({"JOB_CONCURRENCY": "0"}, "JOB_CONCURRENCY"),
        ({"JOB_CONCURRENCY": "2.5"}, "JOB_CONCURRENCY"),
        ({"PORT": "70000"}, "PORT"),
        ({"REPORT_TIMEZONE": "Mars/Olympus"}, "REPORT_TIMEZONE"),
        ({"CURRENCY": "DOLLARS"}, "CURRENCY"),
        ({"SLACK_API_URL": "slack.com/api"}, "SLACK_API_URL"),
        ({"S3_KEEP_UPLOADS": "maybe"}, "S3_KEEP_UPLOADS"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"HOST": "0.0.0.0"}, "UPLOAD_TOKEN"),
        ({"SLACK_CHANNEL": "#front-desk"}, "SLACK_CHANNEL"),
    ],
)
def test_a_bad_value_stops_startup_naming_the_variable(env: dict[str, str], named: str) -> None:
    """The message names what to fix and never echoes a token."""
    with pytest.raises(ConfigError) as error:
        Settings.from_env(env)
    assert named in str(error.value)
    assert BOT not in str(error.value)
    assert APP not in str(error.value)


def test_values_are_read_and_normalised() -> None:
    """Fractions, lists, flags and the API URL's trailing slash."""
    settings = Settings.from_env(
        {
            "PROGRESS_INTERVAL_SECONDS": "0.5",
            "MAX_FILE_SIZE_MB": "1.5",
            "SLACK_API_URL": "http://127.0.0.1:9/api",
            "S3_BUCKET": "staging",
            "S3_KEEP_UPLOADS": "true",
            "CURRENCY": "chf",
            "REPORT_TIMEZONE": "Europe/Zurich",
            "LOG_FORMAT": "JSON",
        }
    )
    assert settings.progress_interval_s == 0.5
    assert settings.max_file_size_bytes == 1_572_864
    assert settings.slack_api_url == "http://127.0.0.1:9/api/"
    assert settings.s3_allowed_buckets == frozenset({"staging"})
    assert settings.s3_keep_uploads
    assert (settings.currency, settings.report_timezone, settings.log_format) == (
        "CHF",
        "Europe/Zurich",
        "json",
    )
    explicit = Settings.from_env({"S3_BUCKET": "staging", "S3_ALLOWED_BUCKETS": "a, b,,"})
    assert explicit.s3_allowed_buckets == frozenset({"a", "b"})


def test_a_public_host_needs_a_token_or_an_explicit_opt_out() -> None:
    """0.0.0.0 with UPLOAD_TOKEN, or with ALLOW_UNAUTHENTICATED_UPLOADS=true, starts."""
    assert Settings.from_env({"HOST": "0.0.0.0", "UPLOAD_TOKEN": "t"}).upload_token == "t"
    assert (
        Settings.from_env({"HOST": "0.0.0.0", "ALLOW_UNAUTHENTICATED_UPLOADS": "true"}).host
        == "0.0.0.0"
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("10.0.0.5", False),
        ("::", False),
        ("clinic.example", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    """127.0.0.0/8, localhost and ::1 are loopback; anything else is not."""
    assert is_loopback(host) is loopback


def test_web_boundary_settings() -> None:
    """Idle timeout, job API rate and PUBLIC_URL: defaults, values, and errors naming them."""
    defaults = Settings.from_env({})
    assert (defaults.upload_idle_timeout_s, defaults.job_api_per_minute) == (30.0, 120)
    assert defaults.public_url is None
    set_ = Settings.from_env(
        {
            "UPLOAD_IDLE_TIMEOUT_SECONDS": "5",
            "JOB_API_PER_MINUTE": "10",
            "PUBLIC_URL": "https://reports.example.com/",
        }
    )
    assert (set_.upload_idle_timeout_s, set_.job_api_per_minute) == (5.0, 10)
    assert set_.public_url == "https://reports.example.com/"
    for env, named in (
        ({"UPLOAD_IDLE_TIMEOUT_SECONDS": "0"}, "UPLOAD_IDLE_TIMEOUT_SECONDS"),
        ({"JOB_API_PER_MINUTE": "0"}, "JOB_API_PER_MINUTE"),
        ({"PUBLIC_URL": "reports.example.com"}, "PUBLIC_URL"),
    ):
        with pytest.raises(ConfigError, match=named):
            Settings.from_env(env)


def test_upload_pace_and_in_flight_settings() -> None:
    """Uploads in flight, the overall deadline and the minimum rate: defaults, values, 0
    turning the rate off, and errors naming the variable."""
    defaults = Settings.from_env({})
    assert (
        defaults.uploads_in_flight,
        defaults.upload_max_s,
        defaults.upload_min_bytes_per_s,
        defaults.upload_rate_window_s,
    ) == (8, 3600.0, 10240, 60.0)
    set_ = Settings.from_env(
        {
            "UPLOADS_IN_FLIGHT": "3",
            "UPLOAD_MAX_SECONDS": "120",
            "UPLOAD_MIN_BYTES_PER_SECOND": "0",
            "UPLOAD_RATE_WINDOW_SECONDS": "5",
        }
    )
    assert (
        set_.uploads_in_flight,
        set_.upload_max_s,
        set_.upload_min_bytes_per_s,
        set_.upload_rate_window_s,
    ) == (3, 120.0, 0, 5.0)
    for env, named in (
        ({"UPLOADS_IN_FLIGHT": "0"}, "UPLOADS_IN_FLIGHT"),
        ({"UPLOAD_MAX_SECONDS": "0.5"}, "UPLOAD_MAX_SECONDS"),
        ({"UPLOAD_MIN_BYTES_PER_SECOND": "-1"}, "UPLOAD_MIN_BYTES_PER_SECOND"),
        ({"UPLOAD_RATE_WINDOW_SECONDS": "0"}, "UPLOAD_RATE_WINDOW_SECONDS"),
    ):
        with pytest.raises(ConfigError, match=named):
            Settings.from_env(env)


def test_forwarded_allow_ips() -> None:
    """Addresses and networks, * for any, unset for none; a bad entry is named, not echoed."""
    assert not Settings.from_env({}).trusted_proxies.trusts("127.0.0.1")
    some = Settings.from_env({"FORWARDED_ALLOW_IPS": "10.0.0.5, 172.16.0.0/12,::1"})
    proxies = some.trusted_proxies
    assert proxies.trusts("10.0.0.5")
    assert proxies.trusts("172.20.1.1")
    assert proxies.trusts("::1")
    assert proxies.trusts("::ffff:10.0.0.5")  # an IPv4 peer on a dual-stack socket
    assert not proxies.trusts("10.0.0.6")
    assert not proxies.trusts("unknown")
    assert Settings.from_env({"FORWARDED_ALLOW_IPS": "*"}).trusted_proxies.trusts("192.0.2.1")
    with pytest.raises(ConfigError, match="FORWARDED_ALLOW_IPS") as caught:
        Settings.from_env({"FORWARDED_ALLOW_IPS": "10.0.0.5,proxy.internal"})
    assert "proxy.internal" not in str(caught.value)


def test_retention_in_days_and_the_old_minutes_still_honoured() -> None:
    """JOB_RETENTION_DAYS; the older JOB_RETENTION_MINUTES works with a deprecation notice,
    and both at once is an error naming them."""
    assert Settings.from_env({"JOB_RETENTION_DAYS": "7"}).job_retention_s == 7 * 86400
    old = Settings.from_env({"JOB_RETENTION_MINUTES": "90"})
    assert old.job_retention_s == 90 * 60
    assert any("JOB_RETENTION_MINUTES is deprecated" in notice for notice in old.notices)
    with pytest.raises(ConfigError, match="JOB_RETENTION_DAYS or the older JOB_RETENTION_MINUTES"):
        Settings.from_env({"JOB_RETENTION_DAYS": "7", "JOB_RETENTION_MINUTES": "90"})


def test_scale_out_needs_the_queue_the_table_and_the_bucket_together() -> None:
    """JOB_QUEUE_URL, JOB_TABLE and S3_BUCKET: all three or none; the error names the missing."""
    full = {
        "JOB_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123/jobs",
        "JOB_TABLE": "clinic-events-jobs",
        "S3_BUCKET": "clinic-uploads",
    }
    assert Settings.from_env(full).scale_out
    for name in full:
        partial = {key: value for key, value in full.items() if key != name}
        with pytest.raises(ConfigError, match=f"missing: {name}"):
            Settings.from_env(partial)
    with pytest.raises(ConfigError, match="WORKERS_IN_SERVE needs"):
        Settings.from_env({"WORKERS_IN_SERVE": "true"})
    assert Settings.from_env({**full, "WORKERS_IN_SERVE": "yes"}).workers_in_serve
    assert Settings.from_env({"DATA_DIR": "/data"}).data_dir == Path("/data")
