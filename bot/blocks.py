"""Every Slack message of a job, as Block Kit dicts. Pure: no I/O and no Slack client.

```
channel                                  thread
start_message                            waiting_message, then progress_message (updated)
  rewritten at the end to                  rewritten at the end to
  outcome_message                          done_message
  or failed_outcome_message                or failed_message
                                         summary_messages   (one or more, posted after done)
```

A message holds only counts, amounts, dates, row numbers and treatment type names: never a
patient id, a note or any other value of a row. Text from outside (file names, treatment
types, failure reasons) is escaped, so that a name such as `<!channel>` cannot notify anyone,
and clipped, so that every block stays inside Slack's limits below whatever the file holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any, Final, TypedDict

from bot.currency import format_money
from processing.report import Progress, WeeklyReport, WeekStats
from processing.schema import (
    REASONS,
)
from processing.text import displayable
from processing.words import date_range, day_month_year, reason_words, treatment_name


class Message(TypedDict):
    text: str  # the notification, and what clients without blocks show
    blocks: list[dict[str, Any]]


Block = dict[str, Any]

# Slack's documented limits (Block Kit reference, chat.postMessage).
MAX_BLOCKS: Final = 50
MAX_SECTION_TEXT_CHARS: Final = 3000
MAX_SECTION_FIELDS: Final = 10
MAX_FIELD_CHARS: Final = 2000
MAX_HEADER_CHARS: Final = 150
MAX_CONTEXT_ELEMENTS: Final = 10
MAX_CONTEXT_TEXT_CHARS: Final = 3000
MAX_MESSAGE_TEXT_CHARS: Final = 4000
# Not documented: chat.postMessage answers `msg_blocks_too_long` once the blocks of one
# message hold about 13,200 characters of text, far below 50 blocks (slackapi/bolt-js#2509,
# measured there, not here). The budget counts the blocks as JSON, which is always longer
# than their text, so a message under it is under that limit with room to spare.
MAX_BLOCKS_JSON_CHARS: Final = 12_000

# What we choose to show.
WEEKS_SHOWN: Final = 104  # two years; weekly-report.csv in the thread has every week
MAX_SUMMARY_MESSAGES: Final = 10  # what WEEKS_SHOWN keeps the summary within (tested)
# The files a report comes with, in Slack and from the job API alike.
REPORT_CSV_NAME: Final = "weekly-report.csv"
CLINIC_CSV_NAME: Final = "clinic-weekly.csv"
INVALID_ROWS_CSV_NAME: Final = "invalid-rows.csv"
TYPES_SHOWN: Final = 8  # treatment types per week and for the whole period
FIRST_ROWS_SHOWN: Final = 5  # row numbers per invalid-row reason
MAX_TYPE_NAME_CHARS: Final = 40
MAX_FILE_NAME_CHARS: Final = 80
MAX_REASON_CHARS: Final = 1000
MAX_JOB_ID_CHARS: Final = 40
PROGRESS_BAR_CELLS: Final = 20
HEADER_PREFIX: Final = "Weekly report: "
HEADER_NAME_CHARS: Final = MAX_HEADER_CHARS - len(HEADER_PREFIX)

_SLACK_ID: Final = re.compile(r"[A-Z0-9]{2,32}")
_SEP: Final = " · "
_DASH: Final = " \u2013 "  # an en dash between dates


# -- channel message ---------------------------------------------------------------------


def start_message(
    *,
    job_id: str,
    file_name: str,
    size_bytes: int | None,
    requested_by: str | None,
    via_command: bool = False,
    queue_position: int | None,
) -> Message:
    """The channel message that announces a job; `requested_by` is a Slack user id."""
    job = _job(job_id)
    mention = _mention(requested_by)

    def line(name: str) -> str:
        described = name if size_bytes is None else f"{name} ({_size(size_bytes)})"
        if mention:
            described += f" {'requested' if via_command else 'shared'} by {mention}"
        if queue_position is None:
            return f"Processing {described}"
        return (
            f"Queued {described}, waiting for a free slot "
            f"(position {queue_position:,} in the queue)"
        )

    name = _file_name(file_name)
    emoji = ":hourglass_flowing_sand:" if queue_position is None else ":double_vertical_bar:"
    return _message(
        f"{line(name)} — job {job}",
        [_section(f"{emoji} {line(f'*{name}*')}"), _context(f"Job {job}")],
    )


def outcome_message(report: WeeklyReport, *, file_name: str, job_id: str, currency: str) -> Message:
    """The start message once the report is out: one line with the headline numbers."""
    rows = _plural(report.rows_total, "row")
    if report.rows_invalid:
        rows += f" ({report.rows_invalid:,} invalid)"
    revenue = f"{format_money(report.revenue_cents, currency)} revenue"
    if report.weeks:
        weeks = f"over {_plural(len(report.weeks), 'week')} ({_period(report)})"
    else:
        weeks = "in no week (no valid rows)"
    rest = f": {rows}, {revenue} {weeks} — see thread (job {_job(job_id)})"
    name = _file_name(file_name)
    return _message(name + rest, [_section(f":white_check_mark: *{name}*{rest}")])


def failed_outcome_message(reason: str, *, file_name: str, job_id: str) -> Message:
    """The start message when the job failed; `reason` is already safe to show."""
    rest = f" could not be processed: {_reason(reason)} — see thread (job {_job(job_id)})"
    name = _file_name(file_name)
    return _message(name + rest, [_section(f":x: *{name}*{rest}")])


# -- progress message in the thread -------------------------------------------------------


def waiting_message(*, queue_position: int | None) -> Message:
    """The progress message before the first rows are read: queued, or starting."""
    if queue_position is None:
        line = "Starting: reading the first rows…"
    else:
        line = f"Waiting for a free slot (position {queue_position:,} in the queue)…"
    return _message(line, [_section(f"*{line}*")])


def progress_message(
    progress: Progress, *, total_bytes: int | None, elapsed_s: float, currency: str
) -> Message:
    """The live progress message: rows, revenue and invalid rows so far, percent and ETA."""
    fraction = None
    if total_bytes:
        fraction = min(max(progress.bytes_read / total_bytes, 0.0), 1.0)
    if fraction is None:
        status = f"*Processing…* {_size(progress.bytes_read)} read"
        read = f"{_size(progress.bytes_read)} read"
    else:
        status = (
            f"*Processing…* {_bar(fraction)} {_percent(fraction)}{_SEP}{_eta(fraction, elapsed_s)}"
        )
        read = f"{_size(progress.bytes_read)} of {_size(total_bytes or 0)} read"
    revenue = format_money(progress.revenue_cents, currency)
    lines = [
        status,
        _rows_line(progress.rows_total, progress.rows_valid, progress.rows_invalid, elapsed_s),
        f"Revenue so far: *{revenue}*",
    ]
    invalid = _reason_counts(progress.invalid_by_reason)
    if invalid:
        lines.append(f"Invalid rows so far — {invalid}")
    done = "" if fraction is None else f" {_percent(fraction)}"
    summary = f"Processing{done}: {_plural(progress.rows_total, 'row')}, {revenue} revenue so far"
    return _message(
        summary,
        [_section("\n".join(lines)), _context(f"{read}{_SEP}{_duration(elapsed_s)} elapsed")],
    )


def done_message(report: WeeklyReport, *, elapsed_s: float, currency: str) -> Message:
    """The progress message once the file is read: 100%, totals and how long it took."""
    revenue = format_money(report.revenue_cents, currency)
    lines = [
        f"*Done* {_bar(1.0)} 100%{_SEP}finished in {_duration(elapsed_s)}",
        _rows_line(report.rows_total, report.rows_valid, report.rows_invalid, elapsed_s),
        f"Revenue: *{revenue}*",
    ]
    invalid = _reason_counts({reason: summary.count for reason, summary in report.errors.items()})
    if invalid:
        lines.append(f"Invalid rows — {invalid}")
    return _message(
        f"Done (100%): {_plural(report.rows_total, 'row')}, {revenue} revenue,"
        f" in {_duration(elapsed_s)}",
        [
            _section("\n".join(lines)),
            _context(f"{_size(report.bytes_read)} read{_SEP}the weekly report follows"),
        ],
    )


def failed_message(reason: str, *, job_id: str) -> Message:
    """The progress message when the job failed; `reason` is already safe to show."""
    why = _reason(reason)
    job = _job(job_id)
    return _message(
        f"The file could not be processed: {why}",
        [
            _section(f":x: *The file could not be processed.*\n{why}"),
            _context(f"Job {job}: mention it if you ask for help."),
        ],
    )


# -- weekly summary in the thread ---------------------------------------------------------


def summary_messages(report: WeeklyReport, *, file_name: str, currency: str) -> list[Message]:
    """The weekly report: totals, then one section per week, the newest WEEKS_SHOWN weeks.

    The weeks fill a message until Slack's block count or size limit, then go on in the next
    one, which opens with a small "continued (2/3)" line. A longer report says that the CSV
    has the older weeks: a thread is read, not searched, and its length stays bounded
    (at most MAX_SUMMARY_MESSAGES) whatever the file holds.
    """
    name = _file_name(file_name)
    head = [
        _header(f"{HEADER_PREFIX}{_clip_middle(_one_line(file_name), HEADER_NAME_CHARS)}"),
        *_totals(report, currency),
        _divider(),
    ]
    shown = report.weeks[-WEEKS_SHOWN:]
    if len(shown) < len(report.weeks):
        older = len(report.weeks) - len(shown)
        head.insert(
            -1,
            _context(
                f"Showing the newest {len(shown):,} of {len(report.weeks):,} weeks; "
                f"{REPORT_CSV_NAME} below has all of them ({_plural(older, 'older week')} "
                "not shown here)."
            ),
        )
    week_blocks = [_week_section(week, currency) for week in shown]
    pages = _paginate(head, week_blocks, continued=_continued(name, 9999, 9999))
    messages = []
    for number, blocks in enumerate(pages, start=1):
        counter = f"({number}/{len(pages)})"
        ids = _block_ids(blocks)
        weeks = [week for week in report.weeks if _week_id(week) in ids]
        if number == 1:
            text = (
                f"Weekly report for {name}: {format_money(report.revenue_cents, currency)} revenue"
            )
            if report.weeks:
                text += f" over {_plural(len(report.weeks), 'week')} ({_period(report)})"
            if len(pages) > 1:
                text += f" {counter}"
        else:
            blocks[0] = _continued(name, number, len(pages))
            text = f"Weekly report for {name}, continued {counter}"
            if weeks:
                text += f": {_span(weeks[0].week_start, weeks[-1].week_end)}"
        messages.append(_message(text, blocks))
    return messages


def _continued(name: str, number: int, count: int) -> Block:
    return _context(f"Weekly report: {name}{_SEP}continued ({number}/{count})")


def _totals(report: WeeklyReport, currency: str) -> list[Block]:
    treatments = sum(week.treatments_completed for week in report.weeks)
    appointments = sum(week.appointments for week in report.weeks)
    bookings = sum(week.bookings for week in report.weeks)
    period = (
        f"*Period*\n{_period(report)}\n{_plural(len(report.weeks), 'week')}"
        if report.weeks
        else "*Period*\nno week: no row was valid"
    )
    blocks = [
        _section(
            fields=[
                f"*Rows*\n{report.rows_total:,} total\n"
                f"{report.rows_valid:,} valid{_SEP}{report.rows_invalid:,} invalid",
                f"*Revenue*\n{format_money(report.revenue_cents, currency)}",
                period,
                f"*Activity*\n{_plural(treatments, 'treatment')} completed\n"
                f"{_plural(appointments, 'appointment')}{_SEP}{_plural(bookings, 'booking')}",
            ]
        ),
        _section(_invalid_rows(report)),
    ]
    totals_by_type = report.revenue_by_treatment_cents
    if totals_by_type:
        blocks.append(
            _section("*Revenue by treatment type*\n" + _by_type(totals_by_type, currency, "\n"))
        )
    notes = [f"Amounts in {currency}", f"weeks run Monday to Sunday, {report.timezone} time"]
    if not report.dialect.plain:
        notes.append(f"file {report.dialect.describe()}")
    if report.rows_invalid:
        notes.append("row numbers as in a spreadsheet, the header being row 1")
    blocks.append(_context(_SEP.join(notes)))
    return blocks


def _invalid_rows(report: WeeklyReport) -> str:
    if not report.rows_invalid:
        lines = ["*Invalid rows:* none, every row was valid."]
    else:
        lines = ["*Invalid rows* (left out of every total)"]
        for reason in _ordered(report.errors):
            summary = report.error(reason)
            if summary.count:
                lines.append(
                    f"• {_reason_label(reason)}: {summary.count:,}"
                    f"{_first_rows(summary.first_rows, summary.count)}"
                )
    if report.revenue_on_other_event:
        lines.append(
            f"Note: {_plural(report.revenue_on_other_event, 'row')} "
            f"{'has' if report.revenue_on_other_event == 1 else 'have'} an amount on an event "
            "other than a completed treatment; those amounts are not counted."
        )
    return "\n".join(lines)


def _first_rows(rows: Sequence[int], count: int) -> str:
    if not rows:
        return ""
    shown = rows[:FIRST_ROWS_SHOWN]
    more = ", …" if count > len(shown) else ""
    label = "row" if count == 1 else "rows"
    # No thousands separators: "rows 1,963, 2,518" would read as four rows.
    return f" ({label} {', '.join(str(row) for row in shown)}{more})"


def _week_section(week: WeekStats, currency: str) -> Block:
    lines = [
        f"*Week of {_span(week.week_start, week.week_end)}*{_SEP}"
        f"*{format_money(week.revenue_cents, currency)}*",
        f"{_plural(week.treatments_completed, 'treatment')} completed{_SEP}"
        f"{_plural(week.appointments, 'appointment')}{_SEP}{_plural(week.bookings, 'booking')}",
    ]
    if week.revenue_by_treatment_cents:
        lines.append(_by_type(week.revenue_by_treatment_cents, currency, _SEP))
    return _section("\n".join(lines), block_id=_week_id(week))


def _week_id(week: WeekStats) -> str:
    return f"week-{week.week_start.isoformat()}"


def _by_type(cents_by_type: Mapping[str, int], currency: str, separator: str) -> str:
    """The largest types first, then "… and N more types ($X)" for the rest."""
    ranked = sorted(cents_by_type.items(), key=lambda item: (-item[1], item[0]))
    shown, rest = ranked[:TYPES_SHOWN], ranked[TYPES_SHOWN:]
    parts = [f"{_type_name(kind)} {format_money(cents, currency)}" for kind, cents in shown]
    if rest:
        rest_cents = sum(cents for _, cents in rest)
        parts.append(
            f"… and {len(rest):,} more {'type' if len(rest) == 1 else 'types'} "
            f"({format_money(rest_cents, currency)})"
        )
    return separator.join(parts)


def _paginate(
    head: list[Block], week_blocks: list[Block], *, continued: Block
) -> list[list[Block]]:
    """Blocks split into messages under MAX_BLOCKS and MAX_BLOCKS_JSON_CHARS.

    Each later message starts with `continued`, a stand-in for its "continued (2/3)" line
    at least as long as the real one.
    """
    pages = [list(head)]
    size = _json_chars(head)
    for block in week_blocks:
        block_size = _json_chars([block]) + 2
        if len(pages[-1]) + 1 > MAX_BLOCKS or size + block_size > MAX_BLOCKS_JSON_CHARS:
            pages.append([continued])
            size = _json_chars([continued])
        pages[-1].append(block)
        size += block_size
    return pages


def _json_chars(blocks: list[Block]) -> int:
    return len(json.dumps(blocks, ensure_ascii=False))


def _block_ids(blocks: Iterable[Block]) -> set[str]:
    return {block["block_id"] for block in blocks if "block_id" in block}


def _period(report: WeeklyReport) -> str:
    return _span(report.weeks[0].week_start, report.weeks[-1].week_end)


# -- shared lines -------------------------------------------------------------------------


def _rows_line(total: int, valid: int, invalid: int, elapsed_s: float) -> str:
    line = f"*{total:,}* rows read: {valid:,} valid, {invalid:,} invalid"
    if elapsed_s > 0:
        line += f"{_SEP}{total / elapsed_s:,.0f} rows per second"
    return line


def _reason_counts(counts: Mapping[str, int]) -> str:
    return _SEP.join(
        f"{_reason_label(reason)}: {counts[reason]:,}"
        for reason in _ordered(counts)
        if counts[reason]
    )


def _ordered(by_reason: Mapping[str, object]) -> list[str]:
    """Reasons in the order the engine checks them, then any others."""
    return [*(r for r in REASONS if r in by_reason), *(r for r in by_reason if r not in REASONS)]


def _reason_label(reason: str) -> str:
    return _escape(reason_words(reason))


def _bar(fraction: float) -> str:
    filled = round(fraction * PROGRESS_BAR_CELLS)
    # Plain text: Slack colours a code span red, which reads as an error.
    return f"{'█' * filled}{'░' * (PROGRESS_BAR_CELLS - filled)}"


def _percent(fraction: float) -> str:
    # Never "100%" while reading: the last block may still be on its way.
    return f"{min(int(fraction * 100), 99 if fraction < 1 else 100)}%"


def _eta(fraction: float, elapsed_s: float) -> str:
    if fraction >= 1:
        return "almost done"
    if fraction < 0.01 or elapsed_s < 1:
        return "estimating the time left…"
    left_s = elapsed_s * (1 - fraction) / fraction
    if left_s < 1:
        return "less than a second left"
    return f"about {_duration(left_s)} left"


# -- formatting ---------------------------------------------------------------------------


def _day(day: date) -> str:
    return day_month_year(day)


def _span(start: date, end: date) -> str:
    return date_range(start, end)


def _size(size_bytes: int) -> str:
    if size_bytes < 1024:
        return "1 byte" if size_bytes == 1 else f"{size_bytes:,} bytes"
    if size_bytes < 1024**2:
        return f"{size_bytes / 1024:,.0f} KB"
    if size_bytes < 1024**3:
        return f"{size_bytes / 1024**2:,.1f} MB"
    return f"{size_bytes / 1024**3:,.1f} GB"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


# -- outside text -------------------------------------------------------------------------


def outside_text(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """Text from outside (a file name, an error naming one) made safe for mrkdwn: one line,
    no control or bidi characters, `&`, `<` and `>` escaped."""
    return _escape(_clip(_one_line(text), limit))


def _escape(text: str) -> str:
    """Slack's three control characters; `<!channel>` must not notify anyone."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _one_line(text: str) -> str:
    return displayable(text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_middle(text: str, limit: int) -> str:
    """Cut in the middle, so that "…2024-12.csv" still tells files apart."""
    if len(text) <= limit:
        return text
    tail = min(16, limit // 3)
    return text[: limit - 1 - tail] + "…" + text[len(text) - tail :]


def _file_name(file_name: str) -> str:
    return _escape(_clip_middle(_one_line(file_name), MAX_FILE_NAME_CHARS)) or "(no name)"


def _type_name(kind: str) -> str:
    return _escape(treatment_name(kind, MAX_TYPE_NAME_CHARS))


def _reason(reason: str) -> str:
    return _escape(_clip(_one_line(reason), MAX_REASON_CHARS)) or "unknown reason"


def _job(job_id: str) -> str:
    return _escape(_clip(_one_line(job_id), MAX_JOB_ID_CHARS))


def _mention(user_id: str | None) -> str | None:
    """`<@U123>` for a well-formed Slack user id; anything else is left out."""
    if user_id is None or not _SLACK_ID.fullmatch(user_id):
        return None
    return f"<@{user_id}>"


# -- blocks -------------------------------------------------------------------------------
# The builders clip as a last guard: the callers already keep well inside the limits.


def _message(text: str, blocks: list[Block]) -> Message:
    return {"text": _clip(text, MAX_MESSAGE_TEXT_CHARS), "blocks": blocks[:MAX_BLOCKS]}


def _mrkdwn(text: str, limit: int) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _clip(text, limit)}


def _section(
    text: str | None = None, *, fields: Sequence[str] = (), block_id: str | None = None
) -> Block:
    block: Block = {"type": "section"}
    if block_id is not None:
        block["block_id"] = block_id
    if text is not None:
        block["text"] = _mrkdwn(text, MAX_SECTION_TEXT_CHARS)
    if fields:
        block["fields"] = [_mrkdwn(field, MAX_FIELD_CHARS) for field in fields][:MAX_SECTION_FIELDS]
    return block


def _header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": _clip(text, MAX_HEADER_CHARS)}}


def _context(*texts: str) -> Block:
    return {
        "type": "context",
        "elements": [_mrkdwn(text, MAX_CONTEXT_TEXT_CHARS) for text in texts][
            :MAX_CONTEXT_ELEMENTS
        ],
    }


def _divider() -> Block:
    return {"type": "divider"}
