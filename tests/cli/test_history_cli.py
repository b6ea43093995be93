"""`report --scope` and `history` on the command line: an export added to its scope, the
same file recognised by its bytes, a weekly export measured against the weeks before it,
the exports listed, a scope forgotten, and an unknown scope refused with exit 3."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import date, timedelta
from pathlib import Path

from bot.store.sqlite import DB_FILE
from tests.helpers import cli, csv_of

MONDAY = date(2024, 1, 1)


def daily(first: date, days: int, cents: int) -> str:
    return csv_of(
        *(
            f"e{first}{n},CL-1,P-SECRET-{n},TREATMENT_COMPLETED,"
            f"{first + timedelta(days=n)}T10:00:00Z,cleaning,{cents / 100:.2f}"
            for n in range(days)
        )
    )


def test_a_weekly_export_is_measured_against_the_scope_before_it(tmp_path: Path) -> None:
    """Eight weeks, then the ninth alone: the history's headline compares the ninth week
    with the eighth and the four before it; each week says which export it came from."""
    env = {"DATA_DIR": str(tmp_path / "data")}
    eight, ninth = tmp_path / "eight.csv", tmp_path / "ninth.csv"
    eight.write_text(daily(MONDAY, 56, 1000))
    ninth.write_text(daily(MONDAY + timedelta(weeks=8), 7, 2000))
    for path in (eight, ninth):
        done = cli("report", str(path), "--scope", "north", "--format", "json", env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["rows"]["total"] in (56, 7)  # the file's own report

    shown = cli("history", "north", "--format", "json", env=env)
    assert shown.returncode == 0, shown.stderr
    history = json.loads(shown.stdout)
    assert (history["scope"], history["timezone"], history["currency"]) == ("north", "UTC", "USD")
    headline = history["headline"]
    assert (headline["latest_week"], headline["latest_revenue"]) == ("2024-02-26", "140.00")
    assert (headline["previous_revenue"], headline["change_pct"]) == ("70.00", "100.0")
    assert headline["average_4w_revenue"] == "70.00"
    assert [e["weeks_won"] for e in history["exports"]] == [8, 1]
    first, second = (e["id"] for e in history["exports"])
    assert [w["export"] for w in history["weeks"]] == [first] * 8 + [second]

    weeks = list(
        csv.DictReader(io.StringIO(cli("history", "north", "--format", "csv", env=env).stdout))
    )
    assert [row["export"] for row in weeks] == [first] * 8 + [second]
    listed = list(csv.DictReader(io.StringIO(cli("history", "north", "--exports", env=env).stdout)))
    text = cli("history", "north", env=env).stdout
    assert text.startswith("History of north: 2 exports\nTimezone UTC, amounts in USD\n")
    assert "Latest complete week, 26 Feb – 3 Mar 2024: 140.00 USD, ▲ 100.0%" in text
    assert "Rows:" not in text  # rows belong to files
    assert text.count(first) == 8
    assert text.count(second) == 1
    assert [row["id"] for row in listed] == [first, second]
    assert [row["bytes"] for row in listed] == [
        str(eight.stat().st_size),
        str(ninth.stat().st_size),
    ]


def test_the_same_file_again_prints_nothing_and_adds_nothing(tmp_path: Path) -> None:
    """Its bytes' SHA-256 is the first export's: `same file as export <id>` on stderr,
    nothing on stdout, exit 0; the scope still has one export."""
    env = {"DATA_DIR": str(tmp_path / "data")}
    path = tmp_path / "events.csv"
    path.write_text(daily(MONDAY, 14, 500))
    first = cli("report", str(path), "--scope", "north", env=env)
    assert first.returncode == 0, first.stderr
    again = cli("report", "-", "--scope", "north", stdin=path.read_bytes(), env=env)
    [export] = list(
        csv.DictReader(io.StringIO(cli("history", "north", "--exports", env=env).stdout))
    )
    assert again.returncode == 0
    assert again.stdout == ""
    assert again.stderr == f"same file as export {export['id']}\n"


def test_another_timezone_is_reported_but_not_added(tmp_path: Path) -> None:
    """The scope keeps its first export's timezone: a later one in another is printed as
    usual and stays out, saying why."""
    env = {"DATA_DIR": str(tmp_path / "data")}
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text(daily(MONDAY, 7, 500))
    two.write_text(daily(MONDAY + timedelta(weeks=1), 7, 500))
    assert cli("report", str(one), "--scope", "north", env=env).returncode == 0
    other = cli("report", str(two), "--scope", "north", "--timezone", "Europe/Paris", env=env)
    assert other.returncode == 0
    assert "Weekly report for" in other.stdout
    assert "not added to scope north: its weeks are in UTC" in other.stderr
    assert len(cli("history", "north", "--exports", env=env).stdout.splitlines()) == 2


def test_a_scope_is_forgotten_and_an_unknown_one_is_exit_3(tmp_path: Path) -> None:
    """--forget deletes it; asking for it then, or for one never made, is one line, exit 3."""
    env = {"DATA_DIR": str(tmp_path / "data")}
    path = tmp_path / "events.csv"
    path.write_text(daily(MONDAY, 7, 500))
    assert cli("report", str(path), "--scope", "north", env=env).returncode == 0
    assert cli("history", "north", "--forget", env=env).returncode == 0
    for name in ("north", "south"):
        gone = cli("history", name, env=env)
        assert gone.returncode == 3
        assert gone.stderr == f"clinic-events: error: no history is kept for scope '{name}'\n"
    assert cli("history", "south", "--forget", env=env).returncode == 3


def test_the_history_store_holds_no_patient_id(tmp_path: Path) -> None:
    """Aggregates only: no patient id of the file is in any stored value."""
    env = {"DATA_DIR": str(tmp_path / "data")}
    path = tmp_path / "events.csv"
    path.write_text(daily(MONDAY, 14, 500))
    assert cli("report", str(path), "--scope", "north", env=env).returncode == 0
    db = sqlite3.connect(tmp_path / "data" / DB_FILE)
    stored = b"".join(
        value if isinstance(value, bytes) else str(value).encode()
        for table in ("scopes", "exports")
        for row in db.execute(f"SELECT * FROM {table}")
        for value in row
    )
    db.close()
    assert stored
    assert b"P-SECRET" not in stored
