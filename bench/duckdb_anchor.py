"""The best-in-class anchor: DuckDB's read_csv and one SQL aggregation of the same metrics.

Prints per-week totals as JSON for the benchmark to compare. Malformed rows are dropped by
DuckDB (ignore_errors) rather than counted, so only metrics of valid rows are compared.
"""

from __future__ import annotations

import json
import sys

import duckdb

TIMESTAMP = (
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([Tt ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?([Zz]|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])?)?"
)

QUERY = f"""
with raw as (
  select trim(event_id) event_id, trim(clinic_id) clinic_id, trim(patient_id) patient_id,
         upper(trim(event_type)) event_type, trim(event_timestamp) ts,
         coalesce(lower(trim(treatment_type)), '') treatment, coalesce(trim(revenue_amount), '') rev
  from read_csv(?, all_varchar = true, header = true, ignore_errors = true)
),
checked as (
  select *, try_cast(substr(ts, 1, 10) as date) as day_ok
  from raw
  where event_id <> '' and clinic_id <> '' and patient_id <> '' and event_type <> '' and ts <> ''
    and regexp_full_match(ts, '{TIMESTAMP}')
    and (rev = '' or regexp_full_match(rev, '\\+?[0-9]+(\\.[0-9]+)?'))
),
valid as (
  select event_type, treatment,
         date_trunc('week', cast(try_cast(ts as timestamptz) at time zone 'UTC' as date)) as week,
         case when rev = '' then 0::decimal(38, 9) else cast(rev as decimal(38, 9)) * 100 end as x
  from checked where day_ok is not null
)
select cast(week as varchar) as week, event_type, treatment, count(*) as events,
       sum(case when event_type = 'TREATMENT_COMPLETED'
                then floor(x) + case when x - floor(x) > 0.5 then 1 when x - floor(x) < 0.5 then 0
                                     when floor(x) % 2 = 0 then 0 else 1 end
                else 0 end)::hugeint as cents
from valid group by all
"""


def main() -> int:
    connection = duckdb.connect()
    connection.execute("set TimeZone = 'UTC'")
    weeks: dict[str, dict[str, int]] = {}
    valid = 0
    for week, event_type, _treatment, events, cents in connection.execute(
        QUERY, [sys.argv[1]]
    ).fetchall():
        totals = weeks.setdefault(
            week[:10],
            {
                "revenue_cents": 0,
                "treatments_completed": 0,
                "appointments": 0,
                "bookings": 0,
                "events": 0,
            },
        )
        valid += events
        totals["events"] += events
        if event_type == "TREATMENT_COMPLETED":
            totals["revenue_cents"] += int(cents)
            totals["treatments_completed"] += events
        if "APPOINTMENT" in event_type:
            totals["appointments"] += events
        if "BOOKING" in event_type or "BOOKED" in event_type:
            totals["bookings"] += events
    json.dump({"valid": valid, "weeks": dict(sorted(weeks.items()))}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
