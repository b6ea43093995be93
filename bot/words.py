"""The service's own sentences: Slack's answers to shares and commands, the upload page's
and the job API's refusals, and how a job that did not finish says why, on whatever surface.
The report's own words (headline, weeks, reasons, sizes) are processing/words.py's; the
lines of Slack's start and progress messages are laid out with their words in
bot/slack/blocks.py.

Two kinds, kept apart on purpose:
- *reasons* are clauses, the job's `error` and its thread's "failed: ..." (lower case, no
  full stop); `sentence()` (processing/words.py) makes one a sentence where it stands alone;
- *answers* are whole sentences for a person who must do something next.

Error messages for an operator (a setting, the store's file, the command line) are written
where they are raised, in the exception (bot/errors.py): they name a variable or a path.
"""

from __future__ import annotations

# -- reasons: why a job did not finish ------------------------------------------------------

SHUTDOWN_REASON = "interrupted by shutdown: the service was restarting; please try again"
RESTART_REASON = "interrupted by a restart; please upload the file again"
DISK_LOW = (
    "the service's disk is nearly full, so it takes no new files until space is freed; "
    "please try again later"
)
STORE_FAILED_AT_START = (
    "could not be started: the service's job store failed; please try again later"
)
FILES_NOT_KEPT = "the files of this report could not be kept (disk full)"
FILES_NOT_STORED = "the files of this report could not be kept (the job store failed)"
INTERRUPTED = "the upload stopped before the whole file arrived; please upload the file again"
STAGING_FAILED = "the file could not be stored for processing; please try again later"
STAGED_GONE = "the staged copy of the upload is gone; please upload the file again"
STAGED_UNREADABLE = "the staged copy of the upload could not be read; please try again later"


def not_drawn(job_id: str) -> str:
    return (
        f"the report was computed but could not be drawn or stored (job {job_id}); please try again"
    )


def exhausted_reason(attempts: int) -> str:
    return f"could not be finished after {attempts} attempts; please try again later"


def store_outage_reason(outage_s: float) -> str:
    return (
        f"could not be finished: the job store was unreachable for {measured_duration(outage_s)}; "
        "please try again"
    )


def measured_duration(seconds: float) -> str:
    """A length of time measured, as people say it: "12 minutes", "1 minute", "40 seconds"."""
    minutes = round(seconds / 60)
    if minutes >= 1:
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    if seconds < 1:
        return "less than a second"
    return "1 second" if round(seconds) == 1 else f"{round(seconds)} seconds"


# -- Slack ------------------------------------------------------------------------------

NOT_IN_CHANNEL = (
    "I'm not in this channel yet. Invite me with `/invite @clinic-events`, then try again."
)
SHUTTING_DOWN = "I'm restarting right now and can't take new files. Please try again in a minute."
STORE_AWAY = (
    "I cannot keep track of new files right now (my job store is not answering), so I did "
    "not start. Please share the file again in a few minutes."
)
SLACK_REFUSED = "Slack refused my message, so I did not start. Please try again."
HTML_ANSWER = (
    "Slack sent a web page instead of the file: the app cannot read files. "
    "An admin needs to reinstall it with the files:read permission (see manifest.yml)"
)
HELP = """*`/process-events`* turns a clinic event export (CSV) into a weekly report in this channel.
• `/process-events` processes the most recent CSV shared in this channel.
• `/process-events &lt;file link or ID&gt;` processes that file: in Slack, open the file's menu, *Copy link*, and paste it.
• `/process-events s3://bucket/path/events.csv` processes an export stored in S3 (allowed buckets only).
• `/process-events help` shows this.
You can also just share a `.csv` file in a channel I'm in: I pick it up by myself.
Required columns: event_id, clinic_id, patient_id, event_type, event_timestamp; revenue comes from revenue_amount on TREATMENT_COMPLETED rows."""


PAUSED = "Paused: the service is restarting. The file will be read again as soon as it is back."


def read_again(attempt: int, attempts: int) -> str:
    """A job taken up again after an interruption."""
    return (
        f"Interrupted, now reading the file again from the start (attempt {attempt} of {attempts})…"
    )


def cannot_process(problem: str) -> str:
    return f"I can't process that: {problem}."


# -- the upload page and the job API ----------------------------------------------------

UNAUTHORIZED = (
    "This service needs an access code. Enter the code your administrator gave you and try again."
)
GARBLED = "The upload arrived garbled or incomplete. Please choose the file and upload it again."
UNREADABLE_FORM_HEADERS = (
    "The upload's form headers could not be read; a file name with a line break in it does "
    "that. Rename the file and upload it again."
)
NOT_A_FORM = "Send the file as a form upload (multipart/form-data) in a field named “file”."
NO_FILE_FIELD = "No file was attached. Choose a CSV file and upload it in the field named “file”."
NO_FILE = "No file was attached. Choose a CSV file and upload it."
STORE_NOT_ANSWERING = (
    "The service cannot keep track of new files right now. Please try again in a minute."
)
RESTARTING = (
    "The service is restarting and takes no new files right now. Please try again in a minute."
)
BAD_KEY = "An Idempotency-Key is 1 to 200 visible ASCII characters (a UUID, for instance)."
KEY_REUSED = (
    "This Idempotency-Key was used for another file in the last 24 hours. Use a new key for "
    "each file."
)
KEY_BUSY = (
    "An upload with this Idempotency-Key has only just started. Please try again in a moment."
)
RESERVATION_KEY_BUSY = (
    "A reservation with this Idempotency-Key is waiting for its file: send the file to the "
    "address it was given, or ask again once it has lapsed."
)
NO_SUCH_RESERVATION = (
    "No upload is waiting under this address: it was sent already, or the link is wrong. "
    "Please choose the file again."
)
RESERVATION_FORM = (
    'Send JSON with the file\'s name and size: {"file_name": "events.csv", "size_bytes": 1234}.'
)
RESERVATION_TOO_BIG = "Send only the file's name and size here."
BAD_HEAD_SHA256 = (
    "head_sha256, when given, is the SHA-256 of the file's first MiB (all of it when smaller), "
    "as 64 lower-case hex digits."
)
RESERVATIONS_FULL = (
    "The service has as many uploads waiting to start as it keeps. Please try again in a minute."
)


def too_many_uploads(per_minute: int, wait_s: int) -> str:
    return (
        f"Too many uploads from your address: at most {per_minute} a minute. Please wait "
        f"{wait_s} seconds and try again."
    )


def uploads_on_their_way(per_client: int) -> str:
    return (
        f"You already have {per_client} uploads on their way from your address. Please wait "
        "until one has finished."
    )


def uploads_full(total: int) -> str:
    return (
        f"The service is receiving as many uploads as it takes at once ({total}). Please try "
        "again in a moment."
    )


def not_csv(name: str) -> str:
    return (
        f"“{name}” is not a CSV file. Export the events as CSV (a file ending in .csv) and "
        "upload that."
    )


def reservation_lapsed(idle_s: float) -> str:
    return (
        f"The reservation lapsed: the file was not sent within {idle_s:g} seconds of it. "
        "Please choose the file again."
    )


def reserved_size_differs(reserved_bytes: int, sent_bytes: int) -> str:
    return (
        f"This upload was reserved for a file of {reserved_bytes:,} bytes, and {sent_bytes:,} "
        "bytes are being sent. Please choose the file again."
    )


def not_stored(job_id: str) -> str:
    return (
        "The file could not be stored for processing. Please try again later; if it keeps "
        f"happening, tell your administrator (reference {job_id})."
    )


def upload_stalled(idle_s: float) -> str:
    return (
        f"the upload stalled: nothing arrived for {idle_s:g} seconds, so the connection was "
        "closed; please upload the file again"
    )


def upload_took_too_long(max_s: float) -> str:
    return (
        f"the upload took too long: it was still arriving after {limit_duration(max_s)}, the "
        "most one upload may take, so the connection was closed; please upload it again over "
        "a faster connection, or split the export"
    )


def upload_too_slow(received_bytes: int, window_s: float, min_bytes_per_s: int) -> str:
    return (
        f"the upload was too slow: {received_bytes:,} bytes arrived in the last "
        f"{limit_duration(window_s)}, less than the {rate(min_bytes_per_s)} an upload must "
        "keep up, so the connection was closed; please upload it again over a faster connection"
    )


def limit_duration(seconds: float) -> str:
    """A configured limit, exactly: "1 hour", "10 minutes", "90 seconds"."""
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return "1 hour" if hours == 1 else f"{hours:,} hours"
    if seconds >= 120 and seconds % 60 == 0:
        return f"{int(seconds // 60):,} minutes"
    return f"{seconds:g} seconds"


def rate(bytes_per_s: int) -> str:
    if bytes_per_s >= 1024 and bytes_per_s % 1024 == 0:
        return f"{bytes_per_s // 1024:,} KB a second"
    return f"{bytes_per_s:,} bytes a second"


SOMETHING_WENT_WRONG = "Something went wrong on our side; please try again."
UPLOAD_WENT_WRONG = "Something went wrong on our side; please try the upload again."
RECORDS_AWAY = "The service cannot read its records right now. Please try again in a minute."
WRONG_HOST = (
    "This service answers only at its own address (127.0.0.1 or localhost, or the PUBLIC_URL "
    "its administrator set). Open the page from there."
)
FOREIGN_ORIGIN = "Files are taken only from this service's own upload page."
NO_CONTENT_ENCODING = "Send the file as it is, without a Content-Encoding (no gzip)."
ONLY_100_CONTINUE = "Only Expect: 100-continue is understood."
# A route's refusals in words, by status (others keep aiohttp's reason).
ROUTE_ERROR_WORDS = {
    404: "There is nothing at this address.",
    405: "This address does not take that method.",
}
# Answers to requests aiohttp refuses before any route, by status.
PROTOCOL_ERROR_WORDS = {
    400: "The request could not be read: it is not well-formed HTTP.",
    413: "The request is too large.",
    417: ONLY_100_CONTINUE,
    431: "The request's headers are too large.",
}


def protocol_error(status: int) -> str:
    if status >= 500:
        return SOMETHING_WENT_WRONG
    return PROTOCOL_ERROR_WORDS.get(status, f"The request could not be handled (HTTP {status}).")


def job_crashed(job_id: str) -> str:
    return f"something went wrong on our side (job {job_id}); please try again"


def too_many_requests(per_minute: int, wait_s: int) -> str:
    return (
        f"Too many requests from your address: at most {per_minute} a minute. Please wait "
        f"{wait_s} seconds."
    )


# -- the job API -------------------------------------------------------------------------

REPORT_GONE = "This report is no longer kept; please upload the file again."
FILES_GONE = "This report is no longer kept."
REPORT_NOT_SHOWN = "The report cannot be shown here"
REPORT_FROM_AN_EARLIER_VERSION = (
    "This report was made by an earlier version of the service, and this page can no longer "
    "show it; please upload the file again."
)
EVERY_ROW_VALID = "Every row of this file was valid: there is nothing to list."
FILES_BEING_MADE = "The report's files are still being made; ask again in a moment."
CHART_NOT_DRAWN = "The chart could not be drawn; the report's tables have every figure."
CHART_NOT_YET = "The chart is ready once the report is finished."
WEEKLY_CSV_NOT_YET = "The weekly CSV is ready once the report is finished."
CLINIC_CSV_NOT_YET = "The clinic CSV is ready once the report is finished."
INVALID_ROWS_NOT_YET = "The invalid rows are listed once the report is finished."


def no_such_job(retention_s: float) -> str:
    days = retention_s / 86400
    kept = f"{days:g} days" if days >= 1 else f"{retention_s / 60:g} minutes"
    return f"No such job: finished jobs are kept for {kept}, or the link is wrong."


def how_to_wait(statuses: list[str], max_wait_s: float) -> str:
    return (
        f"To wait for a change, give seen (one of {', '.join(statuses)}) and wait_s (seconds, "
        f"more than 0 and at most {max_wait_s:g})."
    )
