"""/metrics in Slack mode: jobs by source, rows, and Slack API failures by method."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.helpers import SAMPLE, StartBot, finished_jobs, share
from tests.standin.slack import SlackStandIn


async def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_a_shared_file_and_a_refused_slack_call_show_in_the_metrics(
    slack: SlackStandIn, start_bot: StartBot
) -> None:
    """jobs_total{source="slack"}, rows and bytes, and slack_api_errors_total{method}."""
    service = await start_bot()
    slack.add_file("F0METRIC1", "events.csv", SAMPLE)
    slack.fail_next("chat.update", status=200, error="internal_error")
    await share(slack, "F0METRIC1")
    [job] = await finished_jobs(service)
    assert job.status == "succeeded"

    metrics = await scrape(service.port)
    assert (
        metrics[("clinic_events_jobs_total", (("source", "slack"), ("status", "succeeded")))] == 1
    )
    assert metrics[("clinic_events_rows_processed_total", ())] == 3000
    assert metrics[("clinic_events_bytes_read_total", ())] == len(SAMPLE)
    assert metrics[("clinic_events_invalid_rows_total", (("reason", "invalid_revenue"),))] == 4
    assert metrics[("clinic_events_slack_api_errors_total", (("method", "chat.update"),))] == 1
    assert metrics[("clinic_events_jobs_active", ())] == 0
    assert metrics[("clinic_events_job_duration_seconds_count", ())] == 1
