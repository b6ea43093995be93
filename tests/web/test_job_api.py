"""The job API, the chart, the page and its files, /api/config, /health and /metrics."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from bot import words
from bot.errors import StoreUnavailableError
from bot.report import artifacts
from bot.slack.blocks import summary_messages
from bot.sources import SourceInfo
from bot.store import REPORT_JSON, JobRecord, JobStatus, ReplySpec, now_utc
from bot.web import STATIC_DIR
from bot.web.ops import STORE_CHECK
from processing import WeeklyReport, analyze, to_clinic_csv, to_csv, to_text
from tests.helpers import FORM_TYPE, TWO_WEEKS, GatedChart, form_head, form_tail, tiny_csv
from tests.web.helpers import JOB_TIMEOUT_S, BusySlot, Serve, Web

JOB_KEYS = {
    "id",
    "status",
    "source",
    "created_at",
    "progress",
    "queue_position",
    "queue_words",
    "duration_s",
    "error",
}


def succeeded_upload(job_id: str, *, worker: str | None = None) -> JobRecord:
    """The record of a web upload that has just succeeded (on this instance or another)."""
    return JobRecord(
        id=job_id,
        source=SourceInfo(kind="upload", name="events.csv", label="upload events.csv"),
        reply=ReplySpec(kind="silent"),
        created_at=now_utc(),
        status=JobStatus.SUCCEEDED,
        started_at=time.time() - 1,
        finished_at=time.time(),
        worker=worker,
    )


async def test_unknown_job_is_404(web: Web) -> None:
    """A job id nobody knows is a JSON 404, for the job and its chart."""
    for path in ("/api/jobs/nope1234", "/api/jobs/nope1234/chart.png"):
        answer = await web.get_json(path)
        assert answer.status == 404
        assert "No such job" in answer.body["error"]


async def test_job_json_shape(web: Web) -> None:
    """A finished job shows its source, times, progress and report in the documented shape."""
    job_id = (await web.upload(TWO_WEEKS, "two-weeks.csv")).body["job_id"]

    job = await web.finished(job_id)

    assert set(job) == JOB_KEYS | {"display_version", "report", "treatment_names", "display"}
    assert job["treatment_names"] == {"cleaning": "Cleaning", "filling": "Filling"}
    assert job["id"] == job_id
    assert job["status"] == "succeeded"
    assert job["source"] == {
        "kind": "upload",
        "name": "two-weeks.csv",
        "label": "upload two-weeks.csv",
        "size_bytes": job["source"]["size_bytes"],
    }
    assert job["source"]["size_bytes"] > len(TWO_WEEKS)  # the form around it counts too
    assert job["created_at"].endswith("Z")
    created = datetime.fromisoformat(job["created_at"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60
    assert job["queue_position"] is None
    assert job["queue_words"] is None
    assert isinstance(job["duration_s"], float)
    assert job["progress"] == {
        "rows": 3,
        "valid": 3,
        "invalid": 0,
        "revenue": "120.50",
        "bytes": len(TWO_WEEKS),
        "percent": 100,
        "elapsed_s": job["progress"]["elapsed_s"],
        "left_s": 0.0,
        "time_left": None,
    }
    assert [week["revenue"] for week in job["report"]["weeks"]] == ["100.50", "20.00"]
    assert job["report"]["currency"] == "USD"


async def test_the_page_gets_every_word_it_shows(web: Web) -> None:
    """`display`: every sentence, date, change and status the page shows, from the one
    module every surface uses; lists parallel to the report's weeks and clinics."""
    job_id = (await web.upload(TWO_WEEKS, "two-weeks.csv")).body["job_id"]
    job = await web.finished(job_id)
    assert job["display"] == {
        "source": "From two-weeks.csv · weeks in UTC · amounts in USD",
        "weeks_period": "2 weeks, 1–14 Jan 2024",
        "latest_title": "Latest complete week",
        "comparison": {"words": "no week has data on all seven days", "direction": None},
        "average_note": "needs complete weeks before the latest",
        "best_worst": None,
        "appointments": None,
        "data_quality": "⚠ first week partial, 6 of 7 days · last week partial, 2 of 7 days",
        "data_quality_ok": False,
        "dialect": None,
        "movers": ["Up most: none", "Down most: none"],
        "clinics_week": "Latest week",
        "weeks": [
            {
                "label": "1–7 Jan 2024",
                "change": "",
                "direction": None,
                "status": "partial, 6 of 7 days",
            },
            {
                "label": "8–14 Jan 2024",
                "change": "",
                "direction": None,
                "status": "partial, 2 of 7 days",
            },
        ],
        "clinics": [{"change": "", "direction": None}],
        "treatment_names": {"cleaning": "Cleaning", "filling": "Filling"},
        "invalid_intro": None,
        "invalid_reasons": [],
        "other_event": None,
        "show_all": {
            "weeks": "Show all 2 weeks",
            "clinics": "Show all 1 clinic",
            "treatment_types": "Show all 2 treatment types",
        },
    }


async def test_the_page_gets_the_headline_as_slack_and_the_text_report_say_it(
    web: Web, sample_bytes: bytes
) -> None:
    """The sample: the change with its direction, three clinics up and three down, and the
    invalid rows in the very words of Slack's headline and the text report."""
    job = await web.finished((await web.upload(sample_bytes, "events.csv")).body["job_id"])
    display = job["display"]
    report = analyze(iter([sample_bytes]))
    [headline, _] = summary_messages(report, file_name="events.csv", currency="USD")
    slack = json.dumps(headline, ensure_ascii=False)
    text = to_text(report, "events.csv", "USD")

    assert display["comparison"] == {"words": "▼ 28.8% vs 16–22 Dec 2024", "direction": "down"}
    assert display["movers"] == [
        "Up most: CL-025 ▲ 799.6%, CL-017 ▲ 9.3%, CL-019 ▲ 3.0%",
        "Down most: CL-006 ▼ 100.0%, CL-007 ▼ 100.0%, CL-008 ▼ 100.0%",
    ]
    assert len(job["report"]["headline"]["clinics_down"]) == 5  # the JSON keeps more
    assert display["invalid_reasons"] == [
        "wrong number of fields: 3 (rows 1827, 2483, 2726)",
        "bad date: 3 (rows 294, 988, 1733)",
        "bad amount: 4 (rows 515, 637, 1688, 2854)",
    ]
    for said in (display["comparison"]["words"], *display["invalid_reasons"]):
        assert said in slack, said
        assert said in text, said
    assert display["weeks_period"] in slack
    assert display["best_worst"] in text
    assert display["appointments"] in text


async def test_job_list_is_newest_first_without_reports(web: Web) -> None:
    """GET /api/jobs lists every job, the newest first, and leaves the reports out."""
    first = (await web.upload(TWO_WEEKS, "first.csv")).body["job_id"]
    await web.finished(first)
    second = (await web.upload(TWO_WEEKS, "second.csv")).body["job_id"]
    await web.finished(second)

    answer = await web.get_json("/api/jobs")

    assert answer.status == 200
    jobs = answer.body["jobs"]
    assert [job["id"] for job in jobs] == [second, first]
    assert [job["source"]["name"] for job in jobs] == ["second.csv", "first.csv"]
    for job in jobs:
        assert set(job) == JOB_KEYS


async def test_a_waiting_job_shows_its_place_in_line_and_no_chart(serve: Serve) -> None:
    """With one slot busy, the next upload is queued at position 1; its chart is not there yet."""
    web = await serve(job_concurrency=1)
    async with BusySlot(web) as busy:
        second = await web.upload(TWO_WEEKS, "waiting.csv")
        queued = await web.get_json(second.body["status_url"])
        chart = await web.get_json(second.body["status_url"] + "/chart.png")
        busy.release()

    assert queued.status == 200
    assert queued.body["status"] == "queued"
    assert queued.body["queue_position"] == 1
    assert queued.body["queue_words"] == "Waiting for a free slot (position 1 in the queue)…"
    assert queued.body["progress"] is None
    assert queued.body["duration_s"] is None
    assert queued.body["report"] is None
    assert chart.status == 404
    assert "once the report is finished" in chart.body["error"]
    assert (await web.finished(second.body["job_id"]))["status"] == "succeeded"


async def test_failed_job_shows_the_reason_and_has_no_chart(web: Web) -> None:
    """A file without the required columns: the job fails with that message, no chart."""
    data = b"event_id,clinic,amount\n1,2,10.00\n"
    job_id = (await web.upload(data, "other.csv")).body["job_id"]

    job = await web.finished(job_id)
    chart = await web.get_json(f"/api/jobs/{job_id}/chart.png")

    assert job["status"] == "failed"
    assert job["error"] == (
        'the header lacks clinic_id (found "clinic"? rename it), patient_id, event_type and '
        "event_timestamp; columns found: event_id, clinic, amount"
    )
    assert job["report"] is None
    assert chart.status == 404


async def test_chart_png_once_succeeded(web: Web) -> None:
    """The revenue chart of a finished job is a PNG; asking twice gives the same picture."""
    job_id = (await web.upload(TWO_WEEKS)).body["job_id"]
    await web.finished(job_id)

    pictures = []
    for _ in range(2):
        async with web.session.get(f"/api/jobs/{job_id}/chart.png") as response:
            assert response.status == 200
            assert response.content_type == "image/png"
            pictures.append(await response.read())

    assert pictures[0].startswith(b"\x89PNG\r\n\x1a\n")
    assert pictures[0] == pictures[1]


class WaitedFor(asyncio.Event):
    """An Event that tells when someone starts waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.awaited = asyncio.Event()

    async def wait(self) -> bool:  # type: ignore[override]
        self.awaited.set()
        return await super().wait()


async def test_the_report_is_out_before_its_files_are_made(
    web: Web, gated_chart: GatedChart
) -> None:
    """A finished job answers with its report while its chart is still being drawn; the
    chart and a CSV, asked for meanwhile, come as soon as the files are stored."""
    job_id = (await web.upload(TWO_WEEKS)).body["job_id"]
    job = web.jobs.get(job_id)
    assert job is not None
    job.files_stored = stored = WaitedFor()
    assert await asyncio.to_thread(gated_chart.drawing.wait, JOB_TIMEOUT_S)

    answer = await web.get_json(f"/api/jobs/{job_id}")
    assert answer.body["status"] == "succeeded"
    assert answer.body["report"]["revenue"] == "120.50"

    async def fetched(name: str) -> tuple[int, bytes]:
        async with web.session.get(f"/api/jobs/{job_id}/{name}") as response:
            return response.status, await response.read()

    asked = asyncio.gather(fetched("chart.png"), fetched("weekly-report.csv"))
    await asyncio.wait_for(stored.awaited.wait(), JOB_TIMEOUT_S)
    gated_chart.release.set()
    (chart_status, picture), (csv_status, csv) = await asyncio.wait_for(asked, JOB_TIMEOUT_S)
    assert (chart_status, csv_status) == (200, 200)
    assert picture.startswith(b"\x89PNG\r\n\x1a\n")
    assert csv.startswith(b"week_start,")


async def test_files_another_instance_makes_are_503_until_stored(web: Web) -> None:
    """A job another instance finished: its chart and CSVs are a 503 with Retry-After until
    that instance stores them, then the files; a chart it could not draw is a 404 that says
    so, and so is an invalid-rows file when every row was valid."""
    record = succeeded_upload("elsewhere1", worker="another-instance")
    await web.jobs.store.add(record)
    await web.jobs.store.put_artifacts(record.id, {REPORT_JSON: b'{"report": {}}'})
    base = f"/api/jobs/{record.id}/"

    for name in ("chart.png", "weekly-report.csv", "invalid-rows.csv"):
        making = await web.get_json(base + name)
        assert making.status == 503
        assert making.headers["Retry-After"] == "1"
        assert "still being made" in making.body["error"]

    await web.jobs.store.put_artifacts(
        record.id, {"weekly-report.csv": b"week_start\n", artifacts.CHART_PNG_NAME: b"\x89PNG-ish"}
    )
    for name, body in (("chart.png", b"\x89PNG-ish"), ("weekly-report.csv", b"week_start\n")):
        async with web.session.get(base + name) as response:
            assert response.status == 200
            assert await response.read() == body
    none_invalid = await web.get_json(base + "invalid-rows.csv")
    assert none_invalid.status == 404
    assert "Every row of this file was valid" in none_invalid.body["error"]

    await web.jobs.store.put_artifacts(
        record.id, {artifacts.CHART_PNG_NAME: artifacts.CHART_FAILED}
    )
    failed = await web.get_json(base + "chart.png")
    assert failed.status == 404
    assert "could not be drawn" in failed.body["error"]


async def test_a_chart_that_cannot_be_drawn_leaves_the_report(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drawing the chart fails: the job still succeeds with its report and CSVs, the
    failure is logged, and the chart is a 404 that says it could not be drawn."""

    def broken(report: WeeklyReport, *, currency: str) -> dict[str, bytes]:
        raise RuntimeError("no fonts")

    monkeypatch.setattr(artifacts, "render_chart", broken)
    with structlog.testing.capture_logs() as logs:
        job_id = (await web.upload(TWO_WEEKS)).body["job_id"]
        job = await web.finished(job_id)

    assert job["status"] == "succeeded"
    assert job["report"]["revenue"] == "120.50"
    chart = await web.get_json(f"/api/jobs/{job_id}/chart.png")
    assert chart.status == 404
    assert "could not be drawn" in chart.body["error"]
    async with web.session.get(f"/api/jobs/{job_id}/weekly-report.csv") as response:
        assert response.status == 200
    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == [
        "job.chart_failed"
    ]


async def test_weekly_csv_once_succeeded_is_the_engines_csv(web: Web, sample_bytes: bytes) -> None:
    """weekly-report.csv is exactly `report --format csv`, as a download; 404 before."""
    job_id = (await web.upload(sample_bytes)).body["job_id"]
    await web.finished(job_id)
    async with web.session.get(f"/api/jobs/{job_id}/weekly-report.csv") as response:
        assert response.status == 200
        assert response.content_type == "text/csv"
        assert 'filename="weekly-report.csv"' in response.headers["Content-Disposition"]
        text = await response.text()
    assert text == to_csv(analyze(iter([sample_bytes])))
    missing = await web.get_json("/api/jobs/nope1234/weekly-report.csv")
    assert missing.status == 404


async def test_config_says_whether_a_token_is_needed(serve: Serve) -> None:
    """GET /api/config tells the page about the token, the size limit, the currency, and the
    sentences it refuses a file with before sending it."""
    open_web = await serve(max_file_size_bytes=5 << 20, currency="EUR")
    locked_web = await serve(upload_token="t0ken")

    assert (await open_web.get_json("/api/config")).body == {
        "auth_required": False,
        "max_file_size_bytes": 5 << 20,
        "max_file_size": "5 MB",
        "currency": "EUR",
        "reasons": {
            "malformed_row": "wrong number of fields",
            "missing_required_field": "missing value",
            "invalid_timestamp": "bad date",
            "invalid_revenue": "bad amount",
        },
        "refusals": {
            "not_csv": "“{name}” is not a CSV file. Export the events as CSV (a file ending in "
            ".csv) and upload that.",
            "too_large": "The file is {size}, over the 5 MB limit; split the export or ask an "
            "admin to raise MAX_FILE_SIZE_MB.",
        },
    }
    # The same sentences the server answers with once a file is sent.
    refusals = (await open_web.get_json("/api/config")).body["refusals"]
    not_csv = await open_web.upload(b"x", "events.txt")
    assert not_csv.body["error"] == refusals["not_csv"].replace("{name}", "events.txt")
    locked = await locked_web.get_json("/api/config")
    assert locked.body["auth_required"] is True
    assert "t0ken" not in repr(locked.body)


async def test_health(web: Web) -> None:
    """/health is ok, and says Slack is off in local mode."""
    answer = await web.get_json("/health")

    assert answer.status == 200
    assert answer.body == {"status": "ok", "slack": "disabled", "store": "ok"}


async def test_metrics_count_uploads_jobs_and_rows(web: Web, sample_bytes: bytes) -> None:
    """/metrics in Prometheus format counts uploads by outcome, jobs and rows."""
    job_id = (await web.upload(sample_bytes, "events-sample.csv")).body["job_id"]
    await web.finished(job_id)
    await web.upload(TWO_WEEKS, "events.txt")

    async with web.session.get("/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    uploads = {
        dict(labels)["outcome"]: value
        for (name, labels), value in samples.items()
        if name == "clinic_events_uploads_total"
    }
    assert uploads == {"accepted": 1.0, "unsupported_type": 1.0}
    assert (
        samples[("clinic_events_jobs_total", (("source", "upload"), ("status", "succeeded")))] == 1
    )
    assert samples[("clinic_events_rows_processed_total", ())] == 3000
    assert samples[("clinic_events_invalid_rows_total", (("reason", "invalid_revenue"),))] == 4


async def test_the_page_and_its_files_are_served(web: Web) -> None:
    """GET / is the upload page; its script and styles come from this server only."""
    async with web.session.get("/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        html = await response.text()
        policy = response.headers["Content-Security-Policy"]
    assert 'type="file"' in html
    assert "default-src 'self'" in policy

    for path, content_type in (
        ("/static/app.js", "text/javascript"),
        ("/static/style.css", "text/css"),
    ):
        async with web.session.get(path) as response:
            assert response.status == 200, path
            assert response.content_type in (content_type, "application/javascript"), path
            assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_uses_no_outside_resources_and_no_inner_html() -> None:
    """No CDN, font or other outside address; no HTML built from strings."""
    for name in ("index.html", "app.js", "style.css"):
        text = (STATIC_DIR / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), name
        assert "innerHTML" not in text, name
        assert "insertAdjacentHTML" not in text, name


async def test_unknown_api_address_is_json(web: Web) -> None:
    """aiohttp's own 404 and 405 answers are JSON under /api/ too."""
    missing = await web.get_json("/api/nothing-here")
    wrong_method = await web.get_json("/api/upload")

    assert missing.status == 404
    assert missing.body == {"error": "There is nothing at this address."}
    assert wrong_method.status == 405
    assert wrong_method.headers["Allow"] == "POST"


async def test_invalid_rows_are_reported(web: Web) -> None:
    """Bad rows are counted by reason in the report, not fatal."""
    data = tiny_csv(
        "e1,C1,P1,TREATMENT_COMPLETED,2024-01-02T10:00:00Z,12.00,cleaning",
        "e2,C1,P2,TREATMENT_COMPLETED,not-a-date,12.00,cleaning",
    )
    job = await web.finished((await web.upload(data)).body["job_id"])

    report: dict[str, Any] = job["report"]
    assert report["rows"] == {"total": 2, "valid": 1, "invalid": 1}
    assert report["errors"]["invalid_timestamp"]["count"] == 1
    assert job["progress"]["invalid"] == 1


def test_json_pieces_encode_exactly_what_json_dumps_would_decode() -> None:
    """The job JSON, encoded a week at a time, reads back as the same value."""
    from bot.report.artifacts import json_pieces

    value = {
        "id": "j",
        "report": {"weeks": [{"a": 1}, {"b": "é\u202e"}], "clinics": [], "headline": {"x": None}},
        "note": 'q"',
    }
    assert json.loads("".join(json_pieces(value))) == value
    assert "".join(json_pieces(value)).isascii()


async def test_clinic_and_invalid_rows_csv_downloads(web: Web, sample_bytes: bytes) -> None:
    """clinic-weekly.csv and invalid-rows.csv, as the CLI writes them; 404 with nothing to list."""
    job_id = (await web.upload(sample_bytes, "sample.csv")).body["job_id"]
    await web.finished(job_id)
    report = analyze(iter([sample_bytes]))
    async with web.session.get(f"/api/jobs/{job_id}/clinic-weekly.csv") as response:
        assert response.status == 200
        assert 'filename="clinic-weekly.csv"' in response.headers["Content-Disposition"]
        assert await response.text() == to_clinic_csv(report)
    async with web.session.get(f"/api/jobs/{job_id}/invalid-rows.csv") as response:
        assert response.status == 200
        lines = (await response.text()).splitlines()
        assert lines[0] == "row,reason,column,detail"
        assert len(lines) == 1 + report.rows_invalid
    clean = (await web.upload(TWO_WEEKS, "clean.csv")).body["job_id"]
    await web.finished(clean)
    nothing = await web.get_json(f"/api/jobs/{clean}/invalid-rows.csv")
    assert nothing.status == 404
    assert "nothing to list" in nothing.body["error"]


async def test_health_is_503_when_the_job_store_takes_no_writes(web: Web) -> None:
    """A store that refuses writes (a full disk, a read-only volume) makes /health degraded
    once the background probe has seen it; /health itself never asks the store."""
    store = web.jobs.store
    writes = 0

    async def refusing() -> bool:
        nonlocal writes
        writes += 1
        return False

    store.writable = refusing  # type: ignore[method-assign]
    assert web.service is not None
    check = web.service.web_runner.app[STORE_CHECK]
    await check.probe(store)  # what the background does every few seconds
    answers = [await web.get_json("/health") for _ in range(3)]
    assert [answer.status for answer in answers] == [503, 503, 503]
    assert answers[0].body == {"status": "degraded", "slack": "disabled", "store": "unwritable"}
    assert writes == 1


async def test_health_answers_at_once_when_the_store_hangs(web: Web) -> None:
    """A store that never answers (a frozen disk, DynamoDB paused): the probe gives up and
    /health says so, answering from memory at once."""
    store = web.jobs.store
    never = asyncio.Event()

    async def hanging() -> str:
        await never.wait()
        return "ok"

    store.state = hanging  # type: ignore[method-assign]
    assert web.service is not None
    check = web.service.web_runner.app[STORE_CHECK]
    probing = asyncio.create_task(check.probe(store))
    answer = await asyncio.wait_for(web.get_json("/health"), 1.0)
    assert answer.status == 200  # the last probe's word, until this one gives up
    assert await probing == "not answering"
    answer = await asyncio.wait_for(web.get_json("/health"), 1.0)
    assert (answer.status, answer.body["store"]) == (503, "not answering")


async def test_with_no_retention_a_web_report_is_kept_an_hour_and_keys_a_day(
    serve: Serve,
) -> None:
    """JOB_RETENTION_DAYS=0: the page still gets the report it just sent (kept an hour),
    and the upload's key is remembered a day."""
    web = await serve(job_retention_s=0.0)
    async with web.session.post(
        "/api/upload",
        data=form_head("now.csv") + TWO_WEEKS + form_tail(),
        headers={"Content-Type": FORM_TYPE, "Idempotency-Key": "kept-1"},
    ) as response:
        job_id = (await response.json())["job_id"]
    job = await web.finished(job_id)
    assert job["status"] == "succeeded"
    assert job["report"] is not None
    store = web.jobs.store
    expires_at = await store._run(  # type: ignore[attr-defined]
        lambda: store._conn.execute("SELECT expires_at FROM idempotency_keys").fetchone()[0]  # type: ignore[attr-defined]
    )
    assert expires_at - time.time() > 23 * 3600


async def test_a_store_that_fails_is_503_with_retry_after_never_500(web: Web) -> None:
    """A store error on an upload or a job read: 503 with Retry-After, logged under its own
    name."""

    async def failing(*args: object, **kwargs: object) -> None:
        raise StoreUnavailableError("the job store cannot be used right now: disk I/O error")

    web.jobs.store.add = failing  # type: ignore[method-assign]
    web.jobs.store.get = failing  # type: ignore[method-assign]
    with structlog.testing.capture_logs() as logs:
        upload = await web.upload(TWO_WEEKS)
        asked = await web.get_json("/api/jobs/deadbeef")
    assert (upload.status, upload.headers.get("Retry-After")) == (503, "60")
    assert (asked.status, asked.headers.get("Retry-After")) == (503, "60")
    events = [entry["event"] for entry in logs]
    assert "store.unavailable" in events
    assert "upload.crashed" not in events
    assert "upload.announce_failed" not in events


async def test_a_store_that_fails_as_a_job_begins_ends_the_job_saying_so(web: Web) -> None:
    """The store refuses the job's claim (past its patience): the job fails with words,
    instead of staying 'running' with nobody told."""

    async def refusing(*args: object, **kwargs: object) -> None:
        raise StoreUnavailableError("the job store cannot be used right now: disk I/O error")

    web.jobs.store.claim = refusing  # type: ignore[method-assign,assignment]
    answer = await web.upload(TWO_WEEKS)
    job = web.jobs.get(answer.body["job_id"])
    assert job is not None
    await asyncio.wait_for(job.done.wait(), JOB_TIMEOUT_S)
    assert job.status is JobStatus.FAILED
    assert job.error == (
        "could not be started: the service's job store failed; please try again later"
    )


async def test_a_report_stored_by_an_earlier_version_is_shown_with_a_notice_not_broken(
    web: Web, sample_bytes: bytes
) -> None:
    """A report kept from before the page's words changed shape keeps its figures in the
    API, has no `display`, and says why the page cannot show it; a current one has its
    words and no notice."""
    report = analyze(iter([sample_bytes]))
    current = artifacts.report_json(report, source_name="events.csv", currency="USD")
    assert artifacts.current_display(current)
    earlier = json.loads(current)
    del earlier["display_version"]
    earlier["display"] = {"period": "1 Jan – 7 Jan 2024"}  # the shape an earlier page read
    for job_id, stored in (("earlier1", json.dumps(earlier).encode()), ("current1", current)):
        record = succeeded_upload(job_id)
        await web.jobs.store.add(record)
        await web.jobs.store.put_artifacts(job_id, {REPORT_JSON: stored})

    old = await web.get_json("/api/jobs/earlier1")
    assert old.status == 200
    assert old.body["status"] == "succeeded"
    assert old.body["report"] == earlier["report"]
    assert old.body["display"] is None
    assert old.body["display_notice"] == words.REPORT_FROM_AN_EARLIER_VERSION
    assert old.body["display_notice_title"] == words.REPORT_NOT_SHOWN
    new = await web.get_json("/api/jobs/current1")
    assert new.body["display"]["source"].startswith("From events.csv")
    assert "display_notice" not in new.body
