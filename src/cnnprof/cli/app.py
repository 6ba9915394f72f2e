"""Entry point. ``cnnprof MODEL ...`` profiles (no subcommand word); other words are commands.

Torch is imported only inside commands, so ``cnnprof --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer

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


# click's exception classes, wherever this typer takes click from (newer typers vendor it as
# typer._click): found through the public typer.BadParameter's bases
_CLICK_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
_NO_ARGS_IS_HELP: type[Exception] = getattr(
    sys.modules[_CLICK_ERROR.__module__], "NoArgsIsHelpError", type("_Never", (Exception,), {}))


#: the environment variable a completion script sets when it asks cnnprof for candidates
COMPLETE_VAR = "_CNNPROF_COMPLETE"
SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def _version(value: bool) -> None:
    if value:
        from cnnprof import __version__

        typer.echo(f"cnnprof {__version__}")
        raise typer.Exit()


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
    # from the registrations, not typer.main.get_group(app): building the click group here
    # would be done again by app() itself, on every run (about 40 ms)
    return {info.name for info in app.registered_commands if info.name}


def error(message: str) -> None:
    typer.echo(f"cnnprof: error: {message}", err=True)


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
        code = _complete(os.environ[COMPLETE_VAR])
        if argv is None:
            sys.exit(code)
        return code
    if argv is None:  # the console entry point: this process's stdout is the result's
        from cnnprof.cli.streams import reserve_stdout

        reserve_stdout()
    args = list(sys.argv[1:] if argv is None else argv)
    token = DEBUG.set("--debug" in args)
    try:
        code = _run([a for a in args if a != "--debug"])
    finally:
        DEBUG.reset(token)
    if argv is None:
        sys.exit(code)
    return code


def _run(args: list[str]) -> int:
    """The command's exit code: the one place an outcome becomes a code."""
    if args and not args[0].startswith("-") and args[0] not in command_names():
        args = ["profile", *args]
    code = 0
    try:
        result = app(args=args, prog_name="cnnprof", standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == EXIT_INTERRUPTED:  # typer returns Ctrl-C as a silent 130; say so
            error("interrupted (the model was left as found)")
    except _NO_ARGS_IS_HELP as exc:  # bare `cnnprof`: help, as before
        ctx = getattr(exc, "ctx", None)
        typer.echo(ctx.get_help() if ctx is not None else str(exc), err=True)
        code = EXIT_USAGE
    except _CLICK_ERROR as exc:  # click's own usage errors: one line
        hint = _try_help(exc)
        error(exc.format_message() + (f" ({hint})" if hint else ""))  # type: ignore[attr-defined]
        code = getattr(exc, "exit_code", EXIT_USAGE) or EXIT_USAGE
    except typer.Abort:  # click's form of Ctrl-C
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


def _complete(instruction: str) -> int:
    """Answer a completion script (``complete_bash`` ...): the candidates for the words it
    passes in its own variables, in typer's formats for bash, zsh, fish and powershell."""
    import typer.main
    from typer._completion_classes import completion_init
    from typer.completion import shell_complete

    completion_init()
    return shell_complete(typer.main.get_command(app), {}, "cnnprof", COMPLETE_VAR, instruction)


def _print_debug(exc: BaseException) -> None:
    if debug_enabled():
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


def _try_help(exc: Exception) -> str | None:
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return None
    return f"see: {ctx.command_path} --help"


