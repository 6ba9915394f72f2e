"""Budget verdicts as a Rich table, JSON, JUnit XML or GitHub Actions annotations."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from rich import box
from rich.table import Table
from rich.text import Text

from cnnprof.budget import METRICS, Row
from cnnprof.render.console import plain_text
from cnnprof.render.units import format_quantity, signed_percent

CHECK_FORMATS = ("table", "json", "junit", "github")

_STATUS_STYLE = {"ok": "green", "over": "bold red", "failed": "bold red", "skipped": "yellow"}


def value_text(row: Row) -> str:
    return "—" if row.value is None else format_quantity(row.value, row.kind)


def limit_text(row: Row) -> str:
    return format_quantity(row.limit, row.kind)


def headroom_text(row: Row) -> str:
    headroom = row.headroom
    if headroom is None:
        return "—"
    if not math.isfinite(headroom):
        return "over a zero limit"
    return signed_percent(headroom)


def build_table(rows: Sequence[Row], title: str = "cnnprof budget") -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, header_style="bold")
    for header, justify in (("Model", "left"), ("Metric", "left"), ("Value", "right"),
                            ("Limit", "right"), ("Headroom", "right"), ("Status", "left")):
        table.add_column(header, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        status = row.status.upper() if row.status != "ok" else "ok"
        if row.note:
            status += f": {row.note}"
        table.add_row(row.model, METRICS[row.metric].label, value_text(row), limit_text(row),
                      headroom_text(row), Text(status, style=_STATUS_STYLE[row.status]))
    return table


def summary(rows: Sequence[Row]) -> str:
    over = sum(r.status == "over" for r in rows)
    failed = len({r.model for r in rows if r.status == "failed"})
    skipped = sum(r.status == "skipped" for r in rows)
    verdicts = []
    if over:
        verdicts.append(f"{over} exceeded")
    if failed:
        verdicts.append(f"{failed} model(s) failed to run")
    if skipped:
        verdicts.append(f"{skipped} skipped")
    if not over and not failed:
        verdicts.insert(0, "all within budget")
    models = len({r.model for r in rows})
    return f"{len(rows)} limit(s) on {models} model(s): " + ", ".join(verdicts)


def table_text(rows: Sequence[Row], width: int = 120, title: str = "cnnprof budget") -> str:
    """The table as plain text (AssertionError messages, files, CI logs)."""
    return plain_text(build_table(rows, title), summary(rows), width=width)


def to_json(rows: Sequence[Row], path: str) -> str:
    return json.dumps({
        "schema": "cnnprof.budget-check/1",
        "budget": path,
        "ok": not any(r.status in ("over", "failed") for r in rows),
        "rows": [r.to_dict() for r in rows],
    }, indent=2) + "\n"


def _message(row: Row) -> str:
    label = METRICS[row.metric].label
    if row.status == "failed":
        return f"{row.model}: model failed, {label} unknown: {row.note}"
    if row.status == "skipped":
        return f"{row.model}: {label} not checked: {row.note}"
    verb = "exceeds" if row.status == "over" else "within"
    return (f"{row.model}: {label} {value_text(row)} {verb} limit {limit_text(row)} "
            f"(headroom {headroom_text(row)})")


def to_junit(rows: Sequence[Row], path: str) -> str:
    """One test case per model × metric, so CI test views list each limit."""
    failures = sum(r.status == "over" for r in rows)
    errors = sum(r.status == "failed" for r in rows)
    skipped = sum(r.status == "skipped" for r in rows)
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           f'<testsuites name="cnnprof budget" tests="{len(rows)}" failures="{failures}" '
           f'errors="{errors}" skipped="{skipped}">',
           f'  <testsuite name={quoteattr("cnnprof budget " + path)} tests="{len(rows)}" '
           f'failures="{failures}" errors="{errors}" skipped="{skipped}">']
    for row in rows:
        name = quoteattr(f"{row.model}.{row.metric}")
        opening = f'    <testcase classname={quoteattr(row.model)} name={name}'
        if row.status == "ok":
            out.append(opening + " />")
            continue
        out.append(opening + ">")
        tag = {"over": "failure", "failed": "error", "skipped": "skipped"}[row.status]
        out.append(f"      <{tag} message={quoteattr(_message(row))}>"
                   f"{escape(_message(row))}</{tag}>")
        out.append("    </testcase>")
    out += ["  </testsuite>", "</testsuites>", ""]
    return "\n".join(out)


def _escape_property(text: str) -> str:
    # GitHub's workflow-command escaping for property values and messages
    return (text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
            .replace(":", "%3A").replace(",", "%2C"))


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def to_github(rows: Sequence[Row], path: str, width: int = 120) -> str:
    """``::error`` annotations (on the limit's line of the budget file) for exceeded limits
    and failed models, ``::warning`` for skipped ones, then the plain table for the log."""
    out: list[str] = []
    for row in rows:
        if row.status == "ok":
            continue
        level = "warning" if row.status == "skipped" else "error"
        props = [f"file={_escape_property(path)}"]
        if row.line:
            props.append(f"line={row.line}")
        props.append(f"title={_escape_property('cnnprof budget: ' + row.model)}")
        out.append(f"::{level} {','.join(props)}::{_escape_data(_message(row))}")
    return "\n".join(out) + ("\n" if out else "") + table_text(rows, width)


def render_rows(rows: Sequence[Row], fmt: str, path: str, width: int | None = None) -> str:
    if fmt == "json":
        return to_json(rows, path)
    if fmt == "junit":
        return to_junit(rows, path)
    if fmt == "github":
        return to_github(rows, path, width or 120)
    return table_text(rows, width or 120)
