"""Block Kit as Slack checks it: a message the real Slack would refuse is refused here, with
Slack's error and its words (`invalid_blocks`, `msg_too_long`, `no_text`, ...).

Each block type has its own check, found by type in `_CHECKS`; what spans blocks (their
number, unique block_ids, one table per message) is kept in a `_Blocks` as the message's
blocks are read in order, so errors come in the order Slack gives them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.standin.server import error

# Slack's documented limits, checked the way chat.postMessage / chat.update check them.
MAX_TEXT_CHARS = 40_000
MAX_BLOCKS = 50
MAX_SECTION_TEXT_CHARS = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_CHARS = 2000
MAX_HEADER_CHARS = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_BLOCK_ID_CHARS = 255
MAX_TABLE_ROWS = 100
MAX_TABLE_CELLS = 20


def message_problem(
    args: Mapping[str, Any], *, require_content: bool, tables: bool = True
) -> dict[str, Any] | None:
    """Slack's error answer for a message it would refuse, or None."""
    text = args.get("text")
    if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
        return error("msg_too_long")
    if "blocks" in args:
        blocks = args["blocks"]
        if not isinstance(blocks, list):
            return error("invalid_blocks_format")
        errors = block_errors(blocks, tables=tables)
        if errors:
            return error(
                "invalid_blocks",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
    if require_content and not (text or args.get("blocks") or args.get("attachments")):
        return error("no_text")
    return None


@dataclass
class _Blocks:
    """One message's blocks as they are read: the errors so far and what spans blocks."""

    tables: bool  # False: the workspace has no table blocks
    errors: list[str] = field(default_factory=list)
    block_ids: set[str] = field(default_factory=set)
    seen_table: bool = False


def block_errors(blocks: list[Any], *, tables: bool = True) -> list[str]:
    """What Slack says about blocks it refuses, in its words; [] when they are fine."""
    message = _Blocks(tables)
    if len(blocks) > MAX_BLOCKS:
        message.errors.append(f"must be less than {MAX_BLOCKS + 1} items [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            message.errors.append(f"missing required field: type [json-pointer:{at}]")
            continue
        _check_block_id(block, at, message)
        check = _CHECKS.get(block["type"], _check_unsupported)
        check(block, at, message)
    return message.errors


def _check_block_id(block: Mapping[str, Any], at: str, message: _Blocks) -> None:
    block_id = block.get("block_id")
    if not isinstance(block_id, str):
        return
    if len(block_id) > MAX_BLOCK_ID_CHARS:
        message.errors.append(
            f"must be less than {MAX_BLOCK_ID_CHARS + 1} characters [json-pointer:{at}/block_id]"
        )
    if block_id in message.block_ids:
        message.errors.append(f"duplicate block_id [json-pointer:{at}/block_id]")
    message.block_ids.add(block_id)


def _check_section(block: Mapping[str, Any], at: str, message: _Blocks) -> None:
    text, fields = block.get("text"), block.get("fields")
    if text is None and not fields:
        message.errors.append(f"must provide either text or fields [json-pointer:{at}]")
    if text is not None:
        _check_text(text, MAX_SECTION_TEXT_CHARS, f"{at}/text", message.errors)
    if fields is None:
        return
    if not isinstance(fields, list):
        message.errors.append(f"must be an array [json-pointer:{at}/fields]")
        return
    if len(fields) > MAX_SECTION_FIELDS:
        message.errors.append(
            f"must be less than {MAX_SECTION_FIELDS + 1} items [json-pointer:{at}/fields]"
        )
    for j, item in enumerate(fields):
        _check_text(item, MAX_FIELD_CHARS, f"{at}/fields/{j}", message.errors)


def _check_header(block: Mapping[str, Any], at: str, message: _Blocks) -> None:
    _check_text(block.get("text"), MAX_HEADER_CHARS, f"{at}/text", message.errors, plain_only=True)


def _check_context(block: Mapping[str, Any], at: str, message: _Blocks) -> None:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        message.errors.append(f"must provide elements [json-pointer:{at}/elements]")
    elif len(elements) > MAX_CONTEXT_ELEMENTS:
        message.errors.append(
            f"must be less than {MAX_CONTEXT_ELEMENTS + 1} items [json-pointer:{at}/elements]"
        )


def _check_table(block: Mapping[str, Any], at: str, message: _Blocks) -> None:
    if not message.tables:
        message.errors.append(f"unsupported type: table [json-pointer:{at}]")
        return
    if message.seen_table:
        message.errors.append(f"only one table is allowed per message [json-pointer:{at}]")
    message.seen_table = True
    errors = message.errors
    rows = block.get("rows")
    if not isinstance(rows, list) or not rows:
        errors.append(f"must provide rows [json-pointer:{at}/rows]")
        return
    if len(rows) > MAX_TABLE_ROWS:
        errors.append(f"must be less than {MAX_TABLE_ROWS + 1} items [json-pointer:{at}/rows]")
    for i, row in enumerate(rows):
        _check_table_row(row, f"{at}/rows/{i}", errors)
    settings = block.get("column_settings", [])
    if not isinstance(settings, list) or len(settings) > MAX_TABLE_CELLS:
        errors.append(f"at most {MAX_TABLE_CELLS} column settings [json-pointer:{at}]")


def _check_table_row(row: Any, at: str, errors: list[str]) -> None:
    if not isinstance(row, list) or not row or len(row) > MAX_TABLE_CELLS:
        errors.append(f"a row holds 1 to {MAX_TABLE_CELLS} cells [json-pointer:{at}]")
        return
    for j, cell in enumerate(row):
        if not isinstance(cell, dict) or cell.get("type") not in ("raw_text", "rich_text"):
            errors.append(f"unsupported cell type [json-pointer:{at}/{j}]")
        elif cell["type"] == "raw_text" and not (
            isinstance(cell.get("text"), str) and cell["text"]
        ):
            errors.append(f"must be more than 0 characters [json-pointer:{at}/{j}]")


def _check_divider(block: Mapping[str, Any], at: str, message: _Blocks) -> None:
    pass  # nothing in a divider to get wrong


def _check_unsupported(block: Mapping[str, Any], at: str, message: _Blocks) -> None:
    message.errors.append(f"unsupported type: {block['type']} [json-pointer:{at}]")


_CHECKS: dict[str, Callable[[Mapping[str, Any], str, _Blocks], None]] = {
    "section": _check_section,
    "header": _check_header,
    "context": _check_context,
    "table": _check_table,
    "divider": _check_divider,
}


def _check_text(
    obj: Any, limit: int, at: str, errors: list[str], *, plain_only: bool = False
) -> None:
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        errors.append(f"must be a text object of type {' or '.join(kinds)} [json-pointer:{at}]")
        return
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        errors.append(f"must be more than 0 characters [json-pointer:{at}/text]")
    elif len(text) > limit:
        errors.append(f"must be less than {limit + 1} characters [json-pointer:{at}/text]")
