"""processing/ stays pure: importing it loads no bot, Slack, web or cloud module."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator

from tests.helpers import ROOT


def test_processing_imports_nothing_user_facing() -> None:
    """No bot, slack_*, aiohttp, boto3 or logging setup after `import processing`."""
    code = "import json, sys, processing; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", code], cwd=ROOT))
    forbidden = [
        name
        for name in loaded
        if name.split(".")[0]
        in {"bot", "slack_sdk", "slack_bolt", "aiohttp", "boto3", "botocore", "structlog"}
    ]
    assert "processing.engine" in loaded
    assert forbidden == []


def test_a_report_loads_no_more_than_it_needs() -> None:
    """The CLI's report on a small file (UTC, no progress bar) loads no Slack, web, cloud,
    chart, pyarrow.compute, numpy.ma, zoneinfo, difflib or dataclasses module, nor the
    service's settings: each costs start-up (pyarrow.compute alone builds ~300 wrappers; even
    a frozen dataclass is slow to define)."""
    code = (
        "import json, sys, io, contextlib\n"
        "from bot.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['report', 'samples/events-sample.csv', '--format', 'json'])\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", code], cwd=ROOT))
    heavy = {"slack_sdk", "slack_bolt", "aiohttp", "boto3", "botocore", "matplotlib", "structlog"}
    assert [name for name in loaded if name.split(".")[0] in heavy] == []
    assert "pyarrow.compute" not in loaded
    lazy = ("numpy.ma", "zoneinfo", "difflib", "dataclasses", "bot.config")
    assert [name for name in lazy if name in loaded] == []
    assert "processing.engine" in loaded


def test_processing_modules_import_each_other_without_a_cycle() -> None:
    """No module of processing imports one that imports it back, for its types either, and
    none imports a processing module inside a function to get round such a cycle."""
    package = ROOT / "processing"
    graph: dict[str, set[str]] = {}
    inside_functions = []
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[path.stem] = {
            name
            for name in _processing_imports(_top_level(tree))
            if (package / f"{name}.py").exists()
        } - {path.stem}
        inside_functions += [
            f"{path.stem} imports {name} in {node.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for name in _processing_imports(ast.walk(node))
        ]
    assert inside_functions == []
    assert _cycles(graph) == []


def _top_level(tree: ast.Module) -> Iterator[ast.stmt]:
    """A module's statements, and those under a top-level `if` (TYPE_CHECKING)."""
    for node in tree.body:
        yield node
        if isinstance(node, ast.If):
            yield from node.body


def _processing_imports(nodes: Iterator[ast.AST]) -> Iterator[str]:
    """The processing modules these statements import, by their name in the package."""
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module == "processing":
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("processing."):
            yield str(node.module).split(".")[1]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each module that can reach itself, with the path that does it."""
    found = []
    for start in sorted(graph):
        seen: set[str] = set()
        paths = [[start, name] for name in sorted(graph[start])]
        while paths:
            path = paths.pop()
            if path[-1] == start:
                found.append(path)
            elif path[-1] not in seen:
                seen.add(path[-1])
                paths += [[*path, name] for name in sorted(graph.get(path[-1], ()))]
    return found
