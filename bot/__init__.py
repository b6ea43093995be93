"""clinic-events: everything user-facing (CLI now; Slack and HTTP in later issues)."""
