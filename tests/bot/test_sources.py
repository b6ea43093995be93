"""Where the bot token may go, and how file references are read from a command."""

from __future__ import annotations

import pytest

from bot.slack.files import TokenHosts, parse_file_reference
from bot.sources import is_csv_name


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://files.slack.com/files-pri/T1-F1/download/a.csv", True),
        ("https://slack.com/files/x", True),
        ("https://clinic.enterprise.slack.com/x", True),
        ("http://files.slack.com/x", False),  # never the token in clear text
        ("https://slack.com.evil.example/x", False),
        ("https://evilslack.com/x", False),
        ("https://files.slack.com.evil.example/x", False),
        ("https://example.com/x", False),
        ("ftp://files.slack.com/x", False),
    ],
)
def test_the_token_goes_to_slack_com_and_its_subdomains_only(url: str, allowed: bool) -> None:
    """For https://slack.com/api/: slack.com and *.slack.com over https."""
    assert TokenHosts("https://slack.com/api/").allows(url) is allowed


def test_a_proxy_host_shares_the_token_with_its_siblings_only() -> None:
    """api.proxy.example -> proxy.example and *.proxy.example."""
    hosts = TokenHosts("https://api.proxy.example/api/")
    assert hosts.allows("https://files.proxy.example/f")
    assert hosts.allows("https://proxy.example/f")
    assert not hosts.allows("https://other.example/f")


def test_an_ip_address_host_is_only_itself_and_its_port() -> None:
    """A stand-in on 127.0.0.1:8123 gets the token; localhost or another port do not."""
    hosts = TokenHosts("http://127.0.0.1:8123/api/")
    assert hosts.allows("http://127.0.0.1:8123/files-pri/x")
    assert not hosts.allows("http://127.0.0.1:9999/files-pri/x")
    assert not hosts.allows("http://localhost:8123/files-pri/x")


@pytest.mark.parametrize(
    ("text", "file_id"),
    [
        ("F0123ABCD", "F0123ABCD"),
        ("  F0123ABCD ", "F0123ABCD"),
        ("https://clinic.slack.com/files/U0ALICE/F0123ABCD/events.csv", "F0123ABCD"),
        ("<https://clinic.slack.com/files/U0ALICE/F0123ABCD/events.csv|events.csv>", "F0123ABCD"),
        ("https://clinic.slack.com/archives/C1/p123", None),
        ("events.csv", None),
        ("f0123abcd", None),
    ],
)
def test_file_references_bare_linked_and_in_slacks_angle_form(
    text: str, file_id: str | None
) -> None:
    """A file ID, a file link, or `<link|label>`; anything else is not a file."""
    assert parse_file_reference(text) == file_id


def test_a_csv_is_known_by_its_type_or_its_name_in_any_case() -> None:
    """filetype csv, or a name ending in .csv (any case)."""
    assert is_csv_name("EVENTS.CSV")
    assert is_csv_name("export", "csv")
    assert not is_csv_name("events.csv.zip")
    assert not is_csv_name("events.xlsx", "xlsx")
