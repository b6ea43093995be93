"""The second DuckDB anchor: the query a DuckDB user would write in five minutes.

`try_cast` to TIMESTAMPTZ and DECIMAL, no grammar, no trimming rules, no row numbers: it does
NOT enforce the contract (it accepts timestamps and amounts the contract refuses, and drops
malformed rows silently). It is here as a speed anchor only; its totals are not compared.

    python bench/duckdb_lenient.py bench/.data/events-1000000.csv
"""

from __future__ import annotations

import sys

import duckdb

QUERY = """
WITH p AS (
  SELECT event_type, treatment_type,
         coalesce(revenue_amount, '') <> '' AS present,
         try_cast(revenue_amount AS DECIMAL(18, 2)) AS rev,
         try_cast(event_timestamp AS TIMESTAMPTZ) AS ts,
         coalesce(event_id, '') <> '' AND coalesce(clinic_id, '') <> ''
           AND coalesce(patient_id, '') <> '' AND coalesce(event_type, '') <> ''
           AND coalesce(event_timestamp, '') <> '' AS req_ok
  FROM read_csv(?, header = true, all_varchar = true, delim = ',', quote = '"', escape = '"',
                ignore_errors = true))
SELECT (req_ok AND ts IS NOT NULL AND (NOT present OR rev >= 0)) AS valid,
       date_trunc('week', ts AT TIME ZONE 'UTC') AS week,
       CASE WHEN event_type = 'TREATMENT_COMPLETED' THEN coalesce(nullif(treatment_type, ''), 'unknown') END AS t,
       count(*), sum(CAST(rev * 100 AS BIGINT)) FILTER (WHERE event_type = 'TREATMENT_COMPLETED')
FROM p GROUP BY ALL
"""


def main(path: str) -> int:
    rows = duckdb.connect().execute(QUERY, [path]).fetchall()
    print(len(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
