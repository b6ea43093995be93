"""`clinic-events store check` and `store quarantine`: what an operator runs when a serve
says its job store is damaged. They read DATA_DIR as serve does.

check       opens the file read-only, runs SQLite's integrity check and reads the schema
            version and how many jobs it holds: "ok" and 0, or what is wrong and 1
quarantine  with no serve holding DATA_DIR, moves jobs.sqlite3 (and its -wal and -shm) aside
            as jobs.sqlite3.damaged-<time>, keeping them for a closer look; the next serve
            starts with an empty store
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import TextIO

from bot.errors import StoreError
from bot.store.lock import DataDirLock
from bot.store.sqlite import DB_FILE, SCHEMA_VERSION

EXIT_OK = 0
EXIT_PROBLEM = 1


def check(data_dir: Path, out: TextIO) -> int:
    path = data_dir / DB_FILE
    if not path.exists() or path.stat().st_size == 0:
        out.write(f"{path}: no job store yet (a serve creates it)\n")
        return EXIT_OK
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            problems = [row[0] for row in db.execute("PRAGMA integrity_check(20)")]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            jobs = (
                db.execute("SELECT count(*) FROM jobs").fetchone()[0]
                if problems == ["ok"]
                else None
            )
        finally:
            db.close()
    except sqlite3.Error as error:
        damage = getattr(error, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB")
        if isinstance(error, sqlite3.OperationalError) and not damage:
            out.write(f"{path}: cannot be read right now: {error}\n")
            return EXIT_PROBLEM
        out.write(f"{path}: damaged: {error}\n")
        out.write("run `clinic-events store quarantine` to set it aside and start empty\n")
        return EXIT_PROBLEM
    if problems != ["ok"]:
        out.write(f"{path}: damaged ({len(problems)} problems; the first):\n")
        for problem in problems[:5]:
            out.write(f"  {problem}\n")
        out.write("run `clinic-events store quarantine` to set it aside and start empty\n")
        return EXIT_PROBLEM
    if version > SCHEMA_VERSION:
        out.write(f"{path}: written by a newer clinic-events (schema {version})\n")
        return EXIT_PROBLEM
    out.write(f"{path}: ok, schema {version}, {jobs:,} jobs\n")
    return EXIT_OK


def quarantine(data_dir: Path, out: TextIO) -> int:
    path = data_dir / DB_FILE
    if not path.exists():
        out.write(f"{path}: nothing to set aside\n")
        return EXIT_OK
    lock = DataDirLock(data_dir)
    try:
        asyncio.run(lock.acquire(0))  # a running serve keeps it
    except StoreError as error:
        out.write(f"cannot set the store aside: {error}\n")
        return EXIT_PROBLEM
    try:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        moved = []
        for suffix in ("", "-wal", "-shm"):
            part = path.with_name(path.name + suffix)
            if part.exists():
                target = part.with_name(f"{path.name}.damaged-{stamp}{suffix}")
                part.rename(target)
                moved.append(target.name)
    finally:
        lock.release()
    out.write(f"set aside as {', '.join(moved)} in {data_dir}; the next serve starts empty\n")
    return EXIT_OK
