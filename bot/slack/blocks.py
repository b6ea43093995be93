"""Every Slack message of a job, as Block Kit dicts. Pure: no I/O and no Slack client.

```
channel                                  thread
start_message                            waiting_message, then progress_message (updated)
  rewritten at the end to                  rewritten at the end to
  outcome_message                          done_message
  or failed_outcome_message                or failed_message
                                         restarted_message (a job taken up again)
                                         or paused_message (handed back at shutdown)
                                         summary_messages: the headline, then the weeks
                                         (then the files: chart and CSVs)
```

A message holds only counts, amounts, dates, row numbers and treatment type names: never a
patient id, a note or any other value of a row. Text from outside (file names, treatment
types, failure reasons) is escaped, so that a name such as `<!channel>` cannot notify anyone,
and clipped, so that every block stays inside Slack's limits below whatever the file holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from functools import partial
from typing import Any, Final, NotRequired, TypedDict, TypeVar

from bot import words
from bot.report.artifacts import INVALID_ROWS_CSV_NAME, REPORT_CSV_NAME
from bot.report.currency import format_money
from processing import REASONS, Progress, WeeklyReport, WeekStats, estimate
from processing.text import displayable
from processing.words import (
    AVERAGE_4W,
    COMPLETE_WEEK,
    INVALID_ROWS,
    MOVERS_TITLES,
    NO_COMPLETE_WEEK,
    NO_WEEK,
    NOTHING,
    SEP,
    appointments_title,
    best_worst,
    change_words,
    comparison,
    data_quality_line,
    date_range,
    duration,
    file_size,
    invalid_rows_lines,
    latest_week_title,
    movers_words,
    other_event_note,
    outcomes_words,
    over_weeks,
    plural,
    queue_words,
    reason_words,
    sentence,
    time_left,
    treatment_name,
    waiting_for_a_slot,
    week_range,
    week_status_words,
    weeks_words,
)


class Message(TypedDict):
    text: str  # the notification, and what clients without blocks show
    blocks: list[dict[str, Any]]
    # The same message without the blocks some workspaces refuse (a `table`): posted
    # instead when Slack answers invalid_blocks.
    fallback: NotRequired[Message]


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
MAX_TABLE_ROWS: Final = 100  # the table block's own limits; one table per message
MAX_TABLE_CELLS: Final = 20

# What we choose to show.
WEEKS_SHOWN: Final = 26  # half a year; weekly-report.csv in the thread has every week
MAX_SUMMARY_MESSAGES: Final = 3  # whatever the file holds (tested)
TYPES_SHOWN: Final = 8  # treatment types for the whole period
FIRST_ROWS_SHOWN: Final = 5  # row numbers per invalid-row reason
MAX_TYPE_NAME_CHARS: Final = 40
MAX_FILE_NAME_CHARS: Final = 80
MAX_REASON_CHARS: Final = 1000
MAX_JOB_ID_CHARS: Final = 40
PROGRESS_BAR_CELLS: Final = 20
HEADER_PREFIX: Final = "Weekly report: "
HEADER_NAME_CHARS: Final = MAX_HEADER_CHARS - len(HEADER_PREFIX)

_SLACK_ID: Final = re.compile(r"[A-Z0-9]{2,32}")
_T = TypeVar("_T")
_SEP: Final = SEP


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
        described = name if size_bytes is None else f"{name} ({file_size(size_bytes)})"
        if mention:
            described += f" {'requested' if via_command else 'shared'} by {mention}"
        if queue_position is None:
            return f"Processing {described}"
        return f"Queued {described}, {waiting_for_a_slot(queue_position)}"

    name = _file_name(file_name)
    emoji = ":hourglass_flowing_sand:" if queue_position is None else ":double_vertical_bar:"
    return _message(
        f"{line(name)} — job {job}",
        [_section(f"{emoji} {line(f'*{name}*')}"), _context(f"Job {job}")],
    )


def outcome_message(report: WeeklyReport, *, file_name: str, job_id: str, currency: str) -> Message:
    """The start message once the report is out: one line with the headline numbers."""
    rows = plural(report.rows_total, "row")
    if report.rows_invalid:
        rows += f" ({report.rows_invalid:,} invalid)"
    revenue = f"{format_money(report.revenue_cents, currency)} revenue"
    weeks = over_weeks(report) or "in no week (no valid rows)"
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
    line = (
        "Starting: reading the first rows…"
        if queue_position is None
        else queue_words(queue_position)
    )
    return _message(line, [_section(f"*{line}*")])


def restarted_message(*, attempt: int, attempts: int) -> Message:
    """The progress message of a job taken up again after an interruption."""
    line = words.read_again(attempt, attempts)
    return _message(line, [_section(f"*{line}*")])


def files_missing_message(reason: str) -> Message:
    """In the thread after the summary, when the chart and the CSVs could not be kept."""
    line = sentence(reason)
    return _message(line, [_section(f":warning: {line}")])


def paused_message() -> Message:
    """The progress message of a job handed back when the service stopped."""
    line = words.PAUSED
    return _message(line, [_section(f":double_vertical_bar: *{line}*")])


def progress_message(
    progress: Progress, *, total_bytes: int | None, elapsed_s: float, currency: str
) -> Message:
    """The live progress message: rows, revenue and invalid rows so far, percent and ETA."""
    guess = estimate(progress.bytes_read, total_bytes, elapsed_s)
    if guess.fraction is None or guess.percent is None:
        status = f"*Processing…* {file_size(progress.bytes_read)} read"
        read = f"{file_size(progress.bytes_read)} read"
    else:
        status = (
            f"*Processing…* {_bar(guess.fraction)} {guess.percent}%{_SEP}{time_left(guess.left_s)}"
        )
        read = f"{file_size(progress.bytes_read)} of {file_size(total_bytes or 0)} read"
    revenue = format_money(progress.revenue_cents, currency)
    lines = [
        status,
        _rows_line(progress.rows_total, progress.rows_valid, progress.rows_invalid, elapsed_s),
        f"Revenue so far: *{revenue}*",
    ]
    invalid = _reason_counts(progress.invalid_by_reason)
    if invalid:
        lines.append(f"{INVALID_ROWS.capitalize()} so far — {invalid}")
    done = "" if guess.percent is None else f" {guess.percent}%"
    summary = f"Processing{done}: {plural(progress.rows_total, 'row')}, {revenue} revenue so far"
    return _message(
        summary,
        [_section("\n".join(lines)), _context(f"{read}{_SEP}{duration(elapsed_s)} elapsed")],
    )


def done_message(report: WeeklyReport, *, elapsed_s: float, currency: str) -> Message:
    """The progress message once the file is read: 100%, totals and how long it took."""
    revenue = format_money(report.revenue_cents, currency)
    lines = [
        f"*Done* {_bar(1.0)} 100%{_SEP}finished in {duration(elapsed_s)}",
        _rows_line(report.rows_total, report.rows_valid, report.rows_invalid, elapsed_s),
        f"Revenue: *{revenue}*",
    ]
    invalid = _reason_counts({reason: summary.count for reason, summary in report.errors.items()})
    if invalid:
        lines.append(f"{INVALID_ROWS.capitalize()} — {invalid}")
    return _message(
        f"Done (100%): {plural(report.rows_total, 'row')}, {revenue} revenue,"
        f" in {duration(elapsed_s)}",
        [
            _section("\n".join(lines)),
            _context(f"{file_size(report.bytes_read)} read{_SEP}the weekly report follows"),
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
    """The weekly report in two messages, whatever the file holds: the headline (what a
    manager acts on), then the newest WEEKS_SHOWN weeks, newest first. The files follow.

    The weeks go in a `table` block; each message carries a section-text `fallback` for a
    workspace where Slack refuses the table (`invalid_blocks`).
    """
    return [_headline_message(report, file_name, currency), _weeks_message(report, currency)]


def _headline_message(report: WeeklyReport, file_name: str, currency: str) -> Message:
    """The total, the latest complete week, data quality, clinics, types, invalid rows."""
    money = partial(format_money, currency=currency)
    blocks: list[Block] = [
        _header(f"{HEADER_PREFIX}{_clip_middle(_one_line(file_name), HEADER_NAME_CHARS)}"),
        _section(
            f"*Total revenue: {money(report.revenue_cents)}*"
            + (f"\n{weeks_words(report)}" if report.weeks else "")
            + f"{_SEP}{plural(report.rows_total, 'row')} read"
        ),
        *_latest_week(report, money),
        _context(
            data_quality_line(report),
            *([] if report.dialect.plain else [f"File {report.dialect.describe()}"]),
        ),
        *_optional(_movers(report)),
        *_optional(_by_type(report, currency)),
        *_optional(_invalid_rows(report)),
        _context(_SEP.join(_notes(report, currency))),
    ]
    return _message(_headline_text(report, file_name, money), blocks)


def _latest_week(report: WeeklyReport, money: Callable[[int], str]) -> list[Block]:
    """The latest complete week against the one before, the average, best and worst weeks,
    then that week's appointments; or that there is no complete week."""
    headline = report.headline
    latest = report.latest_week
    if latest is None:
        return [
            _section(
                f"*No complete week yet:* {NO_COMPLETE_WEEK}, so there is nothing to compare. "
                "The weeks below show what there is."
            )
        ]
    compared = [comparison(headline).words]
    if headline.change_pct is not None and headline.previous_revenue_cents is not None:
        compared[0] += f" ({money(headline.previous_revenue_cents)})"
    if headline.average_4w_revenue_cents is not None:
        compared.append(f"{AVERAGE_4W} {money(headline.average_4w_revenue_cents)}")
    lines = [
        f"*{latest_week_title(headline)}: {money(latest.revenue_cents)}*",
        _SEP.join(compared),
        *_optional(
            best_worst(headline, lambda monday: money(_week_of(report, monday).revenue_cents))
        ),
    ]
    return [
        _section("\n".join(lines)),
        _section(f"*{appointments_title(latest)}:* {outcomes_words(latest)}"),
    ]


def _week_of(report: WeeklyReport, week_start: date) -> WeekStats:
    return report.weeks[(week_start - report.weeks[0].week_start).days // 7]


def _notes(report: WeeklyReport, currency: str) -> list[str]:
    notes = [f"Amounts in {currency}", f"weeks run Monday to Sunday, {report.timezone} time"]
    if report.rows_invalid:
        notes.append("row numbers as in a spreadsheet, the header being row 1")
    return notes


def _headline_text(report: WeeklyReport, file_name: str, money: Callable[[int], str]) -> str:
    """The notification: the total, then the latest complete week and its change."""
    text = f"Weekly report for {_file_name(file_name)}: {money(report.revenue_cents)} revenue"
    latest = report.latest_week
    if latest is not None:
        text += f"; latest complete week {money(latest.revenue_cents)}"
        if report.headline.change_pct is not None:
            text += f" ({change_words(report.headline.change_pct)})"
    return text


def _optional(item: _T | None) -> list[_T]:
    return [] if item is None else [item]


def _movers(report: WeeklyReport) -> Block | None:
    """Clinics up most and down most between the headline's two weeks, side by side."""
    headline = report.headline
    movers = movers_words(report)
    if not (movers["up"] or movers["down"]) or headline.previous_week is None:
        return None
    return _section(
        f"*Clinics*, {week_range(headline.latest_week or headline.previous_week)} vs "
        f"{week_range(headline.previous_week)}",
        fields=[
            "\n".join([f"*{MOVERS_TITLES[way]}*", *([_escape(name) for name in names] or ["none"])])
            for way, names in movers.items()
        ],
    )


def _invalid_rows(report: WeeklyReport) -> Block | None:
    """The invalid rows by reason, and amounts on events that are not treatments."""
    if not (report.rows_invalid or report.revenue_on_other_event):
        return None
    lines = []
    if report.rows_invalid:
        lines.append(
            f"*{INVALID_ROWS.capitalize()}* (left out of every figure; "
            f"{INVALID_ROWS_CSV_NAME} below lists each)"
        )
        lines += [
            f"• {_escape(line)}" for line in invalid_rows_lines(report.errors, FIRST_ROWS_SHOWN)
        ]
    if report.revenue_on_other_event:
        lines.append(f"Note: {other_event_note(report.revenue_on_other_event)}")
    return _section("\n".join(lines))


def _by_type(report: WeeklyReport, currency: str) -> Block | None:
    """The period's revenue per type, largest first, then "… and N more types ($X)": one
    fixed order, so a type can be found at a glance."""
    entries = report.totals.by_treatment
    if not entries:
        return None
    shown, rest = entries[:TYPES_SHOWN], entries[TYPES_SHOWN:]
    lines = [
        f"{_type_name(entry.treatment_type)}  {format_money(entry.revenue_cents, currency)}"
        + ("" if entry.share_pct is None else f"{_SEP}{entry.share_pct}%")
        for entry in shown
    ]
    if rest:
        rest_cents = sum(entry.revenue_cents for entry in rest)
        lines.append(
            f"… and {plural(len(rest), 'more type')} ({format_money(rest_cents, currency)})"
        )
    return _section("*Revenue by treatment type*, whole period\n" + "\n".join(lines))


WEEK_COLUMNS: Final = (
    ("Week", "left"),
    ("Revenue", "right"),
    ("Change", "right"),
    ("Treatments", "right"),
    ("Appointments", "right"),
    ("Cancelled", "right"),
    ("Status", "left"),
)


def _weeks_message(report: WeeklyReport, currency: str) -> Message:
    """The newest weeks first, one row each: a table, with section text as its fallback."""
    shown = report.weeks[::-1][:WEEKS_SHOWN]
    title = _section("*The weeks, newest first*")
    if not shown:
        note = _context(sentence(NO_WEEK))
        return _message(sentence(NO_WEEK), [title, note])
    cells = [_week_cells(week, currency) for week in shown]
    notes = ["Change: revenue against the complete week before"]
    if len(shown) < len(report.weeks):
        notes.insert(
            0,
            f"Newest {len(shown):,} of {len(report.weeks):,} weeks; "
            f"{REPORT_CSV_NAME} below has all of them",
        )
    note = _context(_SEP.join(notes))
    text = (
        f"The weeks, newest first: {_span(shown[-1].week_start, shown[0].week_end)}"
        f" ({plural(len(shown), 'week')})"
    )
    table: Block = {
        "type": "table",
        "column_settings": [{"align": align} for _, align in WEEK_COLUMNS],
        "rows": [
            [_raw(name) for name, _ in WEEK_COLUMNS],
            *([_raw(cell) for cell in row] for row in cells),
        ],
    }
    # Long currency codes and date ranges could push the table past the message size: the
    # oldest rows go first (the context line already points to the CSV).
    while len(table["rows"]) > 2 and _json_chars([title, table, note]) > MAX_BLOCKS_JSON_CHARS:
        table["rows"].pop()
    lines = [_week_line(week, currency) for week in shown]
    fallback = [title, *_sections_of(lines), note]
    message = _message(text, [title, table, note])
    message["fallback"] = _message(text, fallback)
    return message


def _week_cells(week: WeekStats, currency: str) -> list[str]:
    return [
        week_range(week.week_start),
        format_money(week.revenue_cents, currency),
        change_words(week.change_pct) or NOTHING,
        f"{week.treatments_completed:,}",
        f"{week.appointments:,}",
        NOTHING if week.cancellation_rate is None else f"{week.cancellation_rate}%",
        week_status_words(week) or COMPLETE_WEEK,
    ]


def _week_line(week: WeekStats, currency: str) -> str:
    first = f"*{week_range(week.week_start)}*  {format_money(week.revenue_cents, currency)}"
    if week.change_pct is not None:
        first += f"  {change_words(week.change_pct)}"
    parts = [
        first,
        plural(week.treatments_completed, "treatment"),
        plural(week.appointments, "appointment"),
    ]
    if week.cancellation_rate is not None:
        parts.append(f"{week.cancellation_rate}% cancelled")
    if week.status != "complete":
        parts.append(f"_{week_status_words(week)}_")
    return _SEP.join(parts)


def _sections_of(lines: list[str]) -> list[Block]:
    """Lines packed into as few sections as their text limit allows."""
    sections: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if sections[-1] and size + len(line) + 1 > MAX_SECTION_TEXT_CHARS:
            sections.append([])
            size = 0
        sections[-1].append(line)
        size += len(line) + 1
    return [_section("\n".join(chunk)) for chunk in sections]


def _json_chars(blocks: list[Block]) -> int:
    return len(json.dumps(blocks, ensure_ascii=False))


def _raw(text: str) -> dict[str, str]:
    return {"type": "raw_text", "text": text}


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


# -- formatting ---------------------------------------------------------------------------


def _span(start: date, end: date) -> str:
    return date_range(start, end)


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
