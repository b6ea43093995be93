"""pyarrow's CSV parser alone: the file read as strings, 1 MiB blocks, nothing computed.

The floor for any engine built on it (issue 12's third anchor). Rows with a wrong field
count are skipped, quoted line breaks allowed, as the engine's contract needs.

    python bench/parse_only.py bench/.data/events-1000000.csv
"""

from __future__ import annotations

import sys

import pyarrow as pa
import pyarrow.csv as pacsv


def main(path: str) -> int:
    with open(path, "rb") as stream:
        names = stream.readline().decode("utf-8-sig").strip().split(",")
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=1 << 20),
        parse_options=pacsv.ParseOptions(
            newlines_in_values=True, invalid_row_handler=lambda row: "skip"
        ),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
    )
    rows = sum(batch.num_rows for batch in reader)
    print(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
