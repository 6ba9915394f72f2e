"""The click classes every command is declared with: arguments that carry a help text, listed
under ``Arguments:`` above the options in ``cnnprof COMMAND --help``.

Imports only click, so declaring the commands costs nothing at start-up (``cnnprof --help``
imports this and the command modules, never torch or Rich).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class Argument(click.Argument):
    """A positional argument with a help text (click before 8.5 has none) and the usage
    spelling ``[NAME]...`` for an optional, repeatable one."""

    def __init__(self, param_decls: list[str], *, help: str | None = None,
                 **attrs: Any) -> None:
        super().__init__(param_decls, **attrs)
        self.help = help

    def label(self) -> str:
        return (self.metavar or (self.name or "").upper()) + ("..." if self.nargs != 1 else "")

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        name = self.metavar or (self.name or "").upper()
        name = name if self.required else f"[{name}]"
        return [name + ("..." if self.nargs != 1 else "")]

    def help_row(self) -> tuple[str, str]:
        text = self.help or ""
        if self.required:
            text = f"{text}  [required]" if text else "[required]"
        return self.label(), text


class Command(click.Command):
    """A command whose help lists its arguments (with their help) before its options."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        rows = [p.help_row() for p in self.get_params(ctx) if isinstance(p, Argument)]
        if rows:
            with formatter.section("Arguments"):
                formatter.write_dl(rows)
        self.format_options(ctx, formatter)
        self.format_epilog(ctx, formatter)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [row for p in self.get_params(ctx) if not isinstance(p, click.Argument)
                if (row := p.get_help_record(ctx)) is not None]
        if rows:
            with formatter.section("Options"):
                formatter.write_dl(rows)


def command(name: str) -> Callable[[Callable[..., Any]], Command]:
    """``@command("shapes")``: a :class:`Command` whose help is the function's docstring."""
    return click.command(name, cls=Command)


def argument(name: str, **attrs: Any) -> Callable[[F], F]:
    """``@argument("model", metavar="MODEL", help=...)``: an :class:`Argument`."""
    return click.argument(name, cls=Argument, **attrs)


class Integer(click.IntRange):
    """An integer with bounds, named plainly: ``'x' is not a valid integer.`` (click's own
    says "integer range", which reads as if a range were expected)."""

    name = "integer"


class Number(click.FloatRange):
    """A float with bounds: ``'x' is not a valid float.``"""

    name = "float"
