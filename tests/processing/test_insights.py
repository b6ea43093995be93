"""The manager's figures: outcomes, rates, coverage, the headline and clinics, rule by rule."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from processing import ClinicMovers, analyze, insights
from processing.schema import appointment_outcome, is_new_patient
from tests import oracle
from tests.helpers import csv_of, report_of


@pytest.mark.parametrize(
    ("event_type", "outcome"),
    [
        ("APPOINTMENT_CANCELLED", "cancelled"),
        ("CANCELLATION_REQUESTED", "cancelled"),  # no APPOINTMENT needed for the first rules
        ("APPOINTMENT_NO_SHOW", "no_show"),
        ("PATIENT_NOSHOW", "no_show"),
        ("MISSED_APPOINTMENT", "no_show"),
        ("APPOINTMENT_RESCHEDULED", "rescheduled"),
        ("RESCHEDULE_REQUEST", "rescheduled"),
        ("APPOINTMENT_COMPLETED", "completed"),
        ("APPOINTMENT_ATTENDED", "completed"),
        ("APPOINTMENT_CHECKED_OUT", "completed"),
        ("APPOINTMENT_SCHEDULED", "scheduled"),
        ("APPOINTMENT_CREATED", "scheduled"),
        ("APPOINTMENT_BOOKED", "scheduled"),
        ("APPOINTMENT_CONFIRMED", "scheduled"),
        ("APPOINTMENT_CANCELLED_AFTER_SCHEDULED", "cancelled"),  # the first match wins
        ("TREATMENT_COMPLETED", None),  # COMPLETED needs APPOINTMENT
        ("ONLINE_BOOKING_CREATED", None),
        ("TREATMENT_BOOKED", None),
        ("APPOINTMENT_REMINDER_SENT", None),
    ],
)
def test_outcome_classification(event_type: str, outcome: str | None) -> None:
    assert appointment_outcome(event_type) == outcome


def test_new_patients() -> None:
    assert is_new_patient("PATIENT_REGISTERED")
    assert is_new_patient("NEW_PATIENT_CREATED")
    assert not is_new_patient("PATIENT_UPDATED")


def week(start: date, *types: str, revenue: str = "") -> list[str]:
    """One row per type on the week's Monday (revenue on TREATMENT_COMPLETED rows)."""
    return [
        f"e,c,p,{kind},{start},x,{revenue if kind == 'TREATMENT_COMPLETED' else ''}"
        for kind in types
    ]


MONDAY = date(2024, 1, 1)


def whole_weeks(*weeks: list[str], last_sunday: date) -> str:
    """Rows for consecutive weeks, plus a row on `last_sunday` so the last week is complete."""
    rows = [row for rows in weeks for row in rows]
    return csv_of(*rows, f"e,c,p,X,{last_sunday},,")


def test_rates_and_their_nulls() -> None:
    """Cancellation and no-show rates over completed + cancelled + no-shows; null without any."""
    data = csv_of(
        *week(MONDAY, "APPOINTMENT_COMPLETED", "APPOINTMENT_COMPLETED", "APPOINTMENT_CANCELLED"),
        *week(MONDAY, "APPOINTMENT_CANCELLED", "APPOINTMENT_NO_SHOW", "APPOINTMENT_NO_SHOW"),
        *week(MONDAY, "APPOINTMENT_COMPLETED", "APPOINTMENT_SCHEDULED", "APPOINTMENT_RESCHEDULED"),
        *week(MONDAY + timedelta(weeks=1), "APPOINTMENT_SCHEDULED", "PATIENT_REGISTERED"),
    )
    first, second = report_of(data)["weeks"]
    assert first["appointment_outcomes"] == {
        "scheduled": 1,
        "completed": 3,
        "cancelled": 2,
        "no_show": 2,
        "rescheduled": 1,
    }
    assert (first["cancellation_rate"], first["no_show_rate"]) == ("28.6", "28.6")  # 2/7
    assert (second["cancellation_rate"], second["no_show_rate"]) == (None, None)
    assert second["new_patients"] == 1
    assert report_of(data) == oracle.analyze(data.encode())


def test_rates_round_half_to_even() -> None:
    """1/16 = 6.25% -> 6.2; 3/16 = 18.75% -> 18.8."""
    rows = week(MONDAY, *["APPOINTMENT_COMPLETED"] * 12, "APPOINTMENT_CANCELLED")
    rows += week(MONDAY, *["APPOINTMENT_NO_SHOW"] * 3)
    [only] = report_of(csv_of(*rows))["weeks"]
    assert (only["cancellation_rate"], only["no_show_rate"]) == ("6.2", "18.8")


def test_coverage_at_both_ends_and_in_a_gap() -> None:
    """Weeks cut short by the first and last day are partial; a week without rows is empty."""
    data = csv_of(
        "e,c,p,X,2024-01-03,,",  # a Wednesday: 5 of 7 days
        "e,c,p,X,2024-01-10,,",
        "e,c,p,X,2024-01-23,,",  # the week of 15 Jan has no row; last day a Tuesday
    )
    report = report_of(data)
    assert (report["first_day"], report["last_day"]) == ("2024-01-03", "2024-01-23")
    assert [(w["days_covered"], w["status"]) for w in report["weeks"]] == [
        (5, "partial"),
        (7, "complete"),
        (7, "empty"),
        (2, "partial"),
    ]
    assert report["headline"]["empty_weeks"] == ["2024-01-15"]
    assert report["headline"]["partial_weeks"] == ["2024-01-01", "2024-01-22"]
    assert report == oracle.analyze(data.encode())


def test_one_day_of_data_is_one_partial_week() -> None:
    report = report_of(csv_of("e,c,p,X,2024-01-03,,"))
    assert [(w["days_covered"], w["status"]) for w in report["weeks"]] == [(1, "partial")]
    assert report["headline"]["latest_week"] is None


def test_headline_compares_complete_weeks_only() -> None:
    """Latest and previous complete weeks, the change, the 4-week average and best/worst
    week; the partial last week and an empty week do not count."""
    revenues = ["100.00", "200.00", "300.00", "0", "400.00", "250.00"]
    rows = []
    for index, revenue in enumerate(revenues):
        monday = MONDAY + timedelta(weeks=index)
        if revenue == "0":
            continue  # an empty week
        rows += week(monday, "TREATMENT_COMPLETED", revenue=revenue)
        rows.append(f"e,c,p,X,{monday + timedelta(days=6)},,")  # each week complete
    rows.append(f"e,c,p,TREATMENT_COMPLETED,{MONDAY + timedelta(weeks=6)},x,9999.00")  # partial
    headline = report_of(csv_of(*rows))["headline"]
    assert headline == {
        "latest_week": "2024-02-05",
        "latest_revenue": "250.00",
        "previous_week": "2024-01-29",
        "previous_revenue": "400.00",
        "change_pct": "-37.5",
        "average_4w_revenue": "250.00",  # 100, 200, 300, 400: the empty week is no week
        "best_week": "2024-01-29",
        "worst_week": "2024-01-01",
        "empty_weeks": ["2024-01-22"],
        "partial_weeks": ["2024-02-12"],
        "clinics_up": [],
        "clinics_down": ["c"],  # 400.00 -> 250.00
    }
    assert report_of(csv_of(*rows)) == oracle.analyze(csv_of(*rows).encode())


def test_every_complete_week_is_compared_like_the_headline() -> None:
    """Each complete week's change and 4-week average follow the headline's rules; weeks
    cut short or without data have none, and the latest week's are the headline's."""
    revenues = ["100.00", "200.00", "0", "300.00", "0.00", "150.00"]
    rows = []
    for index, revenue in enumerate(revenues):
        monday = MONDAY + timedelta(weeks=index)
        if revenue == "0":
            continue
        rows += week(monday, "TREATMENT_COMPLETED", revenue=revenue)
        rows.append(f"e,c,p,X,{monday + timedelta(days=6)},,")
    rows.append(f"e,c,p,X,{MONDAY + timedelta(weeks=6, days=1)},,")  # a partial week
    report = report_of(csv_of(*rows))
    figures = [(w["change_pct"], w["average_4w_revenue"]) for w in report["weeks"]]
    assert figures == [
        (None, None),  # nothing before it
        ("100.0", "100.00"),
        (None, None),  # empty
        ("50.0", "150.00"),
        ("-100.0", "200.00"),  # 300 -> 0
        (None, "150.00"),  # nothing to compare with 0.00; average of 100, 200, 300, 0
        (None, None),  # partial
    ]
    headline = report["headline"]
    assert (headline["change_pct"], headline["average_4w_revenue"]) == (None, "150.00")
    assert report == oracle.analyze(csv_of(*rows).encode())


def test_period_totals_and_treatment_shares() -> None:
    """The period's sums and each type's share of revenue, largest first then by name."""
    data = csv_of(
        *week(MONDAY, "TREATMENT_COMPLETED", revenue="30.00"),
        "e,c,p,TREATMENT_COMPLETED,2024-01-02,Implants,60.00",
        "e,c,p,TREATMENT_COMPLETED,2024-01-09,cleaning,30.00",
        "e,c,p,TREATMENT_COMPLETED,2024-01-09,whitening,0.00",
        *week(MONDAY, "APPOINTMENT_COMPLETED", "APPOINTMENT_CANCELLED", "PATIENT_REGISTERED"),
        *week(MONDAY + timedelta(weeks=1), "APPOINTMENT_NO_SHOW", "ONLINE_BOOKING"),
    )
    report = report_of(data)
    totals = report["totals"]
    assert totals["treatments_completed"] == 4
    assert (totals["appointments"], totals["bookings"], totals["new_patients"]) == (3, 1, 1)
    assert totals["appointment_outcomes"]["cancelled"] == 1
    assert (totals["cancellation_rate"], totals["no_show_rate"]) == ("33.3", "33.3")
    assert totals["revenue_by_treatment"] == [
        {"treatment_type": "implants", "revenue": "60.00", "share_pct": "50.0"},
        {"treatment_type": "cleaning", "revenue": "30.00", "share_pct": "25.0"},
        {"treatment_type": "x", "revenue": "30.00", "share_pct": "25.0"},
        {"treatment_type": "whitening", "revenue": "0.00", "share_pct": "0.0"},
    ]
    assert report == oracle.analyze(data.encode())


def test_the_report_carries_the_figures_of_its_weeks_and_clinics() -> None:
    """Totals and movers are made once, with the report, from its weeks and clinics; the
    period's revenue is the totals', the sum of the weeks'."""
    rows = [
        f"e,{clinic},p,TREATMENT_COMPLETED,{MONDAY},cleaning,{cents}"
        for clinic, cents in [("A", 5), ("B", 7)]
    ]
    rows += [f"e,A,p,TREATMENT_COMPLETED,{MONDAY + timedelta(weeks=1)},implants,9.99"]
    rows += [f"e,B,p,APPOINTMENT_CANCELLED,{MONDAY + timedelta(days=13)},,"]
    report = analyze(iter([csv_of(*rows).encode()]))
    assert report.totals == insights.period_totals(report.weeks)
    assert report.movers == insights.clinic_movers(report.clinics)
    assert report.movers == ClinicMovers(up=("A",), down=("B",))
    assert report.revenue_cents == sum(week.revenue_cents for week in report.weeks) == 2199
    assert report.revenue_by_treatment_cents == {"cleaning": 1200, "implants": 999}


def test_clinic_movers_rise_and_fall_separately() -> None:
    """Up: positive changes, largest first; down: negative ones, largest fall first; ties
    to the lower id; at most five each; a clinic without a change is in neither."""
    rows = []
    before = {"A": 100, "B": 100, "C": 100, "D": 100, "E": 0, "F": 100, "G": 100}
    after = {"A": 150, "B": 150, "C": 50, "D": 100, "E": 80, "F": 10, "G": 300}
    for clinic, cents in before.items():
        rows.append(f"e,{clinic},p,TREATMENT_COMPLETED,{MONDAY},x,{cents}.00")
        rows.append(
            f"e,{clinic},p,TREATMENT_COMPLETED,{MONDAY + timedelta(weeks=1)},x,{after[clinic]}.00"
        )
    rows.append(f"e,A,p,X,{MONDAY + timedelta(days=13)},,")
    report = report_of(csv_of(*rows))
    assert report["headline"]["clinics_up"] == ["G", "A", "B"]
    assert report["headline"]["clinics_down"] == ["F", "C"]
    assert report == oracle.analyze(csv_of(*rows).encode())


def test_headline_ties_go_to_the_earlier_week_and_averages_round_half_even() -> None:
    rows = []
    for index, revenue in enumerate(["0.07", "0.01", "0.01", "0.01", "0.07", "0.05"]):
        monday = MONDAY + timedelta(weeks=index)
        rows += week(monday, "TREATMENT_COMPLETED", revenue=revenue)
        rows.append(f"e,c,p,X,{monday + timedelta(days=6)},,")
    headline = report_of(csv_of(*rows))["headline"]
    assert (headline["best_week"], headline["worst_week"]) == ("2024-01-01", "2024-01-08")
    assert headline["average_4w_revenue"] == "0.02"  # (1 + 1 + 1 + 7) / 4 = 2.5 cents -> 2
    assert headline["change_pct"] == "-28.6"  # 5 against 7


def test_no_previous_week_or_a_previous_week_without_revenue() -> None:
    one = csv_of(
        *week(MONDAY, "TREATMENT_COMPLETED", revenue="5"), f"e,c,p,X,{MONDAY + timedelta(days=6)},,"
    )
    headline = report_of(one)["headline"]
    assert (headline["previous_week"], headline["change_pct"], headline["average_4w_revenue"]) == (
        None,
        None,
        None,
    )
    rows = [f"e,c,p,X,{MONDAY},,", f"e,c,p,X,{MONDAY + timedelta(days=6)},,"]
    rows += week(MONDAY + timedelta(weeks=1), "TREATMENT_COMPLETED", revenue="5")
    rows.append(f"e,c,p,X,{MONDAY + timedelta(days=13)},,")
    headline = report_of(csv_of(*rows))["headline"]
    assert (headline["previous_revenue"], headline["change_pct"]) == ("0.00", None)


def test_clinics_are_ordered_by_revenue_then_id_and_compared_on_the_headline_weeks() -> None:
    rows = []
    for index in range(2):
        monday = MONDAY + timedelta(weeks=index)
        rows += [
            f"e,B,p,TREATMENT_COMPLETED,{monday},x,{100 * (index + 1)}",
            f"e,A,p,TREATMENT_COMPLETED,{monday},x,150",
            f"e,C,p,APPOINTMENT_CANCELLED,{monday},,",
            f"e,C,p,X,{monday + timedelta(days=6)},,",
        ]
    rows.append(f"e,A,p,APPOINTMENT_NO_SHOW,{MONDAY + timedelta(days=8)},,")
    report = report_of(csv_of(*rows))
    assert [(c["clinic_id"], c["revenue"]) for c in report["clinics"]] == [
        ("A", "300.00"),
        ("B", "300.00"),
        ("C", "0.00"),
    ]
    a, b, c = report["clinics"]
    assert (a["latest_week_revenue"], a["previous_week_revenue"], a["change_pct"]) == (
        "150.00",
        "150.00",
        "0.0",
    )
    assert (b["change_pct"], b["weeks_active"]) == ("100.0", 2)
    assert (a["no_show"], c["cancelled"], c["change_pct"]) == (1, 2, None)
    assert report == oracle.analyze(csv_of(*rows).encode())
