"""``cnnprof models [--filter TEXT]``: what the zoo can build, from a static listing (no torch,
no Rich: plain text, so the command answers in well under a second)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import click

from cnnprof.cli.params import Integer, command

FORMATS = ("table", "json")
#: the Description column's narrowest width before Source and Task make way for it
MIN_DESCRIPTION_WIDTH = 30
GAP = "   "


@command("models")
@click.option("--filter", "filter_text",
              help="Only models whose name, source or task contains TEXT.")
@click.option("--format", "-f", "fmt", default="table", help="table or json.")
@click.option("--width", type=Integer(min=20), help="Table width (default: the terminal's).")
def models_cmd(filter_text: str | None, fmt: str, width: int | None) -> None:
    """List the models the zoo can build, with their default inputs.

    Also accepted as MODEL: timm:NAME (timm models), hf:MODEL_TYPE, hf:DIR, hf:ORG/NAME
    (Hugging Face configs, offline; --filter hf lists examples), path/to/file.py:Class
    and package.module:factory (your own models, with --arg key=value).
    """
    import json

    from cnnprof.errors import UsageError
    from cnnprof.listing import list_models

    if fmt.lower() not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}", hint="table or json")
    rows = list_models(filter_text)
    if fmt.lower() == "json":
        click.echo(json.dumps([r.__dict__ for r in rows], indent=2))
        return
    from cnnprof.render.console import terminal_width

    columns = terminal_width(width)
    more = ("also timm:NAME, hf:MODEL_TYPE|DIR|ORG/NAME (--filter hf), "
            "file.py:Class, package.module:factory")
    if rows:
        click.echo(format_models(rows, columns))
    summary = (f"{len(rows)} models; {more}" if rows else
               f"no model matches {filter_text!r}; {more}")
    click.echo("\n".join(textwrap.wrap(summary, columns, break_long_words=False)))


def format_models(rows: Sequence[Any], width: int) -> str:
    """The listing as text of at most ``width`` columns: names and inputs whole, descriptions
    wrapped between words, Source and Task left out (and said) when the terminal is narrow."""
    columns: dict[str, list[str]] = {
        "Name": [r.name for r in rows], "Source": [r.source for r in rows],
        "Task": [r.task for r in rows], "Default input": [r.default_input for r in rows],
    }
    widths = {h: max(len(h), *map(len, v)) for h, v in columns.items()}

    def left(keys: list[str]) -> int:
        return sum(widths[k] for k in keys) + len(GAP) * len(keys) + 2

    # a description is wrapped between words, never inside one (a weights name is one word)
    least = max(MIN_DESCRIPTION_WIDTH, *(len(w) for r in rows for w in r.description.split()))
    keys = list(columns)
    narrow = left(keys) + least > width
    if narrow:
        keys = ["Name", "Default input"]
        if left(keys) + least > width:
            return _stacked(rows, width)
    room = width - left(keys) - 1
    longest = max(len(r.description) for r in rows)
    room = min(room, max(longest, len("Description")))

    def line(cells: list[str], description: str) -> str:
        text = "  " + GAP.join(c.ljust(widths[k]) for k, c in zip(keys, cells, strict=True))
        return (text + GAP + description).rstrip()

    out = [line(keys, "Description"), " " + "─" * (left(keys) + room - 1)]
    for index, r in enumerate(rows):
        parts = textwrap.wrap(r.description, room, break_long_words=False,
                              break_on_hyphens=False) or [""]
        out.append(line([columns[k][index] for k in keys], parts[0]))
        out.extend(line(["" for _ in keys], part) for part in parts[1:])
    if narrow:
        out.append("  (Source and Task not shown at this width)")
    return "\n".join(out)


def _stacked(rows: Sequence[Any], width: int) -> str:
    """Each model on its own line with its input, the description indented below it."""
    out = []
    for r in rows:
        out.append(f"  {r.name}   {r.default_input}")
        # a weights name is one word: less indent rather than a broken name
        longest = max((len(word) for word in r.description.split()), default=0)
        indent = " " * max(0, min(6, width - longest))
        out.extend(textwrap.wrap(r.description, width, initial_indent=indent,
                                 subsequent_indent=indent, break_long_words=False,
                                 break_on_hyphens=False))
    out.append("  (Source and Task not shown at this width)")
    return "\n".join(out)
