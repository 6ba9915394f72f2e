"""Entry point. ``cnnprof MODEL ...`` profiles (no subcommand word); other words are commands.

Torch is imported only inside commands, so ``cnnprof --help`` stays fast.
"""

from __future__ import annotations

import sys
import traceback

import typer

from cnnprof.errors import EXIT_INTERRUPTED, EXIT_USAGE, CnnprofError, named_line

app = typer.Typer(
    name="cnnprof",
    help=(
        "Per-layer shapes, parameters, MACs/FLOPs, memory and timings of PyTorch models.\n\n"
        "Profile a model:  cnnprof MODEL [--input 3x224x224] [OPTIONS]   "
        "(see: cnnprof profile --help)"
    ),
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)

_DEBUG = False


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


def main(argv: list[str] | None = None) -> int:
    """Console entry point. Returns (and exits with) the process exit code."""
    global _DEBUG
    args = list(sys.argv[1:] if argv is None else argv)
    _DEBUG = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if args and not args[0].startswith("-") and args[0] not in command_names():
        args = ["profile", *args]
    code = 0
    try:
        app(args=args, prog_name="cnnprof", standalone_mode=True)
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
