"""Entry point. ``cnnprof MODEL ...`` profiles (no subcommand word); other words are commands.

Torch is imported only inside commands, so ``cnnprof --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer

try:  # typer >= 0.22 vendors click: its errors are typer._click's, not click's
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]

from cnnprof.console_encoding import make_streams_safe
from cnnprof.errors import EXIT_INTERRUPTED, EXIT_USAGE, CnnprofError, named_line

app = typer.Typer(
    name="cnnprof",
    help=(
        "Per-layer shapes, parameters, MACs/FLOPs, memory and timings of PyTorch models.\n\n"
        "Profile a model:  cnnprof MODEL [--input 3x224x224] [OPTIONS]   "
        "(see: cnnprof profile --help)"
    ),
    # typer's own completion options guess the shell (and ignore `--show-completion zsh`);
    # ours take it by name: see _options
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)

_DEBUG = False
#: click >= 8.2 raises this (a UsageError whose message is the help) for a bare `cnnprof`
_NO_ARGS_IS_HELP: tuple[type[Exception], ...] = tuple(
    cls for cls in (getattr(click_errors, "NoArgsIsHelpError", None),) if cls is not None)


def _version(value: bool) -> None:
    if value:
        from cnnprof import __version__

        typer.echo(f"cnnprof {__version__}")
        raise typer.Exit()


#: the environment variable a completion script sets when it asks cnnprof for candidates
COMPLETE_VAR = "_CNNPROF_COMPLETE"
SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def _shell(value: str) -> str:
    name = value.strip().lower()
    if name not in SHELLS:
        raise typer.BadParameter(f"unknown shell {value!r}; choose from {', '.join(SHELLS)}")
    return name


def _show_completion(value: str | None) -> None:
    if value:
        from typer._completion_shared import get_completion_script

        typer.echo(get_completion_script(prog_name="cnnprof", complete_var=COMPLETE_VAR,
                                         shell=_shell(value)))
        raise typer.Exit()


def _install_completion(value: str | None) -> None:
    if value:
        from typer._completion_shared import install

        shell, path = install(shell=_shell(value), prog_name="cnnprof",
                              complete_var=COMPLETE_VAR)
        typer.echo(f"{shell} completion installed in {path}; open a new shell to use it")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print cnnprof's version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show the Python traceback of an error "
                               "(accepted anywhere on the command line)."),
    show_completion: str = typer.Option(
        None, "--show-completion", metavar="SHELL", callback=_show_completion, is_eager=True,
        help="Print the completion script for SHELL (bash, zsh, fish, powershell)."),
    install_completion: str = typer.Option(
        None, "--install-completion", metavar="SHELL", callback=_install_completion,
        is_eager=True, help="Install completion for SHELL (bash, zsh, fish, powershell)."),
) -> None:
    # --debug is taken out of argv by main() (so it works after the command word too); it is
    # declared here only to appear in --help
    del version, debug, show_completion, install_completion


def _register() -> None:
    # every command module imports only typer at the top: registering them all is cheap.
    # The order is the order `cnnprof --help` lists them in.
    from cnnprof.cli import check, crosscheck, diff, inputs_cmd, models, profile, shapes

    for module in (profile, models, check, diff, crosscheck, shapes, inputs_cmd):
        module.register(app)


_register()


def command_names() -> set[str]:
    import typer.main

    group = typer.main.get_group(app)
    return set(group.commands)


def error(message: str) -> None:
    typer.echo(f"cnnprof: error: {message}", err=True)


def _usage_error(exc: click_errors.ClickException) -> int:
    """click's own errors (a bad option value, an extra argument, an unknown option) in the
    one-line style of every other error, with where to read more."""
    if isinstance(exc, _NO_ARGS_IS_HELP):  # bare `cnnprof`: the help, as click shows it
        exc.show()
        return exc.exit_code
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "cnnprof"
    if isinstance(exc, click_errors.UsageError):
        message += f" (try: {command} --help)"
    error(message)
    return exc.exit_code


def main(argv: list[str] | None = None) -> int:
    """Console entry point. Returns (and exits with) the process exit code."""
    global _DEBUG
    make_streams_safe()
    if os.environ.get(COMPLETE_VAR):  # a completion script asking for candidates
        from typer._completion_classes import completion_init

        completion_init()  # typer's bash/zsh/fish/powershell answer formats
    args = list(sys.argv[1:] if argv is None else argv)
    _DEBUG = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if args and not args[0].startswith("-") and args[0] not in command_names():
        args = ["profile", *args]
    code = 0
    try:
        # standalone_mode=False: click's errors come here, to be said in one line
        result = app(args=args, prog_name="cnnprof", standalone_mode=False)
        code = result if isinstance(result, int) else 0  # typer.Exit(n) returns n
        if code == EXIT_INTERRUPTED:  # click turned Ctrl-C into Exit(130); say so
            error("interrupted (the model was left as found)")
    except click_errors.ClickException as exc:
        code = _usage_error(exc)
    except typer.Abort:
        error("interrupted")
        code = EXIT_INTERRUPTED
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if code == EXIT_INTERRUPTED:  # click turned Ctrl-C into a silent exit; say so
            error("interrupted (the model was left as found)")
    except CnnprofError as exc:
        if _DEBUG:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        error(exc.one_line())
        code = exc.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        code = EXIT_INTERRUPTED
    except Exception as exc:  # a bug in cnnprof or an unforeseen model error: one line
        if _DEBUG:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        error(f"{named_line(exc)} (run with --debug for the traceback)")
        code = EXIT_USAGE if isinstance(exc, (ValueError, TypeError)) else 1
    if argv is None:
        sys.exit(code)
    return code


def debug_enabled() -> bool:
    return _DEBUG
