"""What a finished report becomes for people: the chart, money in a currency, and the
files (JSON, CSV, PNG) a job keeps and serves."""
