"""Entry point. ``cnnprof MODEL ...`` profiles (no subcommand word); other words are commands.

The commands are module-level click commands (``cli/profile.py`` ...), added to the group
here, in one place (``COMMANDS``). Their modules import only click at the top and torch only
inside the command, so ``cnnprof --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import TYPE_CHECKING

import click

from cnnprof.cli import check, crosscheck, diff, inputs_cmd, models, profile, shapes
from cnnprof.cli.collector import before_exit, rare_collections
from cnnprof.cli.completion import COMPLETE_VAR, shells
from cnnprof.cli.state import DEBUG, debug_enabled
from cnnprof.console_encoding import make_streams_safe
from cnnprof.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CnnprofError,
    named_line,
)
from cnnprof.guard import UserCodeExit, describe_exit

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem


class Group(click.Group):
    """cnnprof's command group: commands listed in the order they were added (click would
    sort them), and a first word that names no command completed as ``cnnprof MODEL``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> object:
        # Ctrl-C in a command: click's Abort, without the blank line click's main writes to
        # stderr first (the error stays the one line _run writes, as under typer)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise click.exceptions.Abort() from exc

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        items = super().shell_complete(ctx, incomplete)
        if not items and incomplete and not incomplete.startswith("-"):
            from cnnprof.cli.completion import complete_model

            items = complete_model(ctx, None, incomplete)
        return items


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from cnnprof import __version__

    click.echo(f"cnnprof {__version__}")
    ctx.exit()


def _show_completion(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if not value or ctx.resilient_parsing:
        return
    from cnnprof.cli import completion

    click.echo(completion.script(ctx.command, completion.check_shell(value)))
    ctx.exit()


def _install_completion(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if not value or ctx.resilient_parsing:
        return
    from cnnprof.cli import completion

    shell = completion.check_shell(value)
    path = completion.install(ctx.command, shell)
    click.echo(f"{shell} completion installed in {path}; open a new shell to use it")
    ctx.exit()


def _complete_shell(_ctx: click.Context, _param: click.Parameter,
                    incomplete: str) -> list[str]:
    return [name for name in shells() if name.startswith(incomplete)]


_SHELLS = ", ".join(name for name in shells() if name != "pwsh")


@click.group(
    "cnnprof", cls=Group,
    help=(
        "Per-layer shapes, parameters, MACs/FLOPs, memory and timings of PyTorch models.\n\n"
        "Profile a model:  cnnprof MODEL [--input 3x224x224] [OPTIONS]   "
        "(see: cnnprof profile --help)"
    ),
    no_args_is_help=True,
    # inherited by every command's context: -h everywhere, and [default: ...] in their help
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Print cnnprof's version and exit.")
# --debug is taken out of argv by main() (so it works after the command word too); it is
# declared here only to appear in --help
@click.option("--debug", is_flag=True, expose_value=False,
              help="Show the Python traceback of an error (accepted anywhere on the command "
                   "line).")
@click.option("--show-completion", metavar="SHELL", expose_value=False, is_eager=True,
              callback=_show_completion, shell_complete=_complete_shell,
              help=f"Print the completion script for SHELL ({_SHELLS}).")
@click.option("--install-completion", metavar="SHELL", expose_value=False, is_eager=True,
              callback=_install_completion, shell_complete=_complete_shell,
              help=f"Install completion for SHELL ({_SHELLS}).")
def app() -> None:
    """The group itself does nothing: its options act in their callbacks."""


#: every command, in the order ``cnnprof --help`` lists them: the one place they are added
COMMANDS: tuple[click.Command, ...] = (
    profile.profile_cmd, models.models_cmd, check.check_cmd, diff.diff_cmd,
    crosscheck.crosscheck_cmd, shapes.shapes_cmd, inputs_cmd.inputs_cmd,
)
for _command in COMMANDS:
    app.add_command(_command)


def command_line(args: list[str]) -> list[str]:
    """``cnnprof MODEL ...`` is ``cnnprof profile MODEL ...``: a first word that is neither
    an option nor a command names a model."""
    if args and not args[0].startswith("-") and args[0] not in app.commands:
        return ["profile", *args]
    return args


def error(message: str) -> None:
    click.echo(f"cnnprof: error: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Console entry point. Returns (and exits with) the process exit code.

    Click runs with ``standalone_mode=False``, so its own exits come back as return values
    and exceptions: a ``SystemExit`` that still reaches this function was raised by code
    cnnprof ran for the user (a model's forward, a peer counter) outside the guard that
    normally catches it (cnnprof.guard), and it is the model's failure (exit 1), never a
    silent exit 0.
    """
    make_streams_safe()  # an ASCII terminal gets ASCII spellings, not UnicodeEncodeError
    if os.environ.get(COMPLETE_VAR):  # a completion script asking for candidates
        from cnnprof.cli.completion import answer

        code = answer(app, os.environ[COMPLETE_VAR],
                      lambda words: command_line([w for w in words if w != "--debug"]))
        if argv is None:
            sys.exit(code)
        return code
    if argv is None:  # the console entry point: this process's stdout is the result's
        from cnnprof.cli.streams import reserve_stdout

        reserve_stdout()
    args = list(sys.argv[1:] if argv is None else argv)
    token = DEBUG.set("--debug" in args)
    try:
        with rare_collections():  # a command is short-lived: see cnnprof/cli/collector.py
            code = _run([a for a in args if a != "--debug"])
    finally:
        DEBUG.reset(token)
    if argv is None:
        before_exit()
        sys.exit(code)
    return code


def _run(args: list[str]) -> int:
    """The command's exit code: the one place an outcome becomes a code."""
    if not args:  # bare `cnnprof`: the help, on stderr, as a usage error
        context = click.Context(app, info_name="cnnprof", **app.context_settings)
        click.echo(context.get_help(), err=True)
        return EXIT_USAGE
    code = 0
    try:
        result = app.main(args=command_line(args), prog_name="cnnprof", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except click.ClickException as exc:  # click's own usage errors: one line
        hint = _try_help(exc)
        error(exc.format_message() + (f" ({hint})" if hint else ""))
        code = exc.exit_code or EXIT_USAGE
    except click.exceptions.Abort:  # click's form of Ctrl-C (and of EOF on stdin)
        error("interrupted (the model was left as found)")
        code = EXIT_INTERRUPTED
    except CnnprofError as exc:
        _print_debug(exc)
        error(exc.one_line())
        code = exc.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader stopped reading (`cnnprof models | head -1`): not an error of ours
        from cnnprof.cli.streams import discard

        discard(sys.stdout)
        code = 0
    except UserCodeExit as exc:  # reached outside a command's own failure handling
        _print_debug(exc)
        error(f"{exc} (run with --debug for the traceback)")
        code = EXIT_FAILURE
    except Exception as exc:  # a bug in cnnprof or an unforeseen model error: one line
        _print_debug(exc)
        error(f"{named_line(exc)} (run with --debug for the traceback)")
        code = EXIT_USAGE if isinstance(exc, (ValueError, TypeError)) else EXIT_FAILURE
    except BaseException as exc:  # SystemExit, GeneratorExit, ... from code run for a model
        _print_debug(exc)
        error(f"code run for the model {describe_exit(exc)} "
              "(run with --debug for the traceback)")
        code = EXIT_FAILURE
    return code


def _print_debug(exc: BaseException) -> None:
    if debug_enabled():
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


def _try_help(exc: click.ClickException) -> str | None:
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return None
    return f"see: {ctx.command_path} --help"
