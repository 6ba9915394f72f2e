"""Tab completion, on click's own shell completion (``click.shell_completion``): the script a
shell sources (``cnnprof --show-completion SHELL``), its installation
(``--install-completion SHELL``) and the answers the script asks for on every <TAB>, through
the ``_CNNPROF_COMPLETE`` environment variable.

Shells: bash, zsh and fish, and PowerShell where the installed click has it (click 8.5+).
A bash script installed by the typer versions of cnnprof asks in typer's words
(``_CNNPROF_COMPLETE=complete_bash``) and gets plain words back, so it keeps working.

A zsh, fish or PowerShell script from those versions asks in variables of typer's own and must
be installed again (``--install-completion``).

Importing this module imports only click; the model listing and the file system are touched
only when a shell asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from collections.abc import Callable

    from click.shell_completion import CompletionItem, ShellComplete

PROG = "cnnprof"
#: the environment variable a completion script sets when it asks cnnprof for candidates
COMPLETE_VAR = "_CNNPROF_COMPLETE"
#: PowerShell's two names; click registers it as "powershell"
_ALIASES = {"pwsh": "powershell"}


def shells() -> tuple[str, ...]:
    """The shells the installed click writes completion scripts for."""
    from click.shell_completion import get_completion_class

    names = ["bash", "zsh", "fish"]
    if get_completion_class("powershell") is not None:  # click 8.5+
        names += ["powershell", "pwsh"]
    return tuple(names)


def check_shell(value: str) -> str:
    """``value`` as a shell name, or a ``click.BadParameter`` naming the known ones."""
    name = value.strip().lower()
    known = shells()
    if name not in known:
        raise click.BadParameter(f"unknown shell {value!r}; choose from {', '.join(known)}")
    return name


def _completer(cli: click.Command, shell: str) -> ShellComplete:
    from click.shell_completion import get_completion_class

    cls = get_completion_class(_ALIASES.get(shell, shell))
    assert cls is not None, shell  # check_shell() let only known shells through
    return cls(cli, {}, PROG, COMPLETE_VAR)


def script(cli: click.Command, shell: str) -> str:
    """The completion script ``shell`` sources (``eval "$(cnnprof --show-completion bash)"``)."""
    return _completer(cli, shell).source().rstrip("\n")


def install(cli: click.Command, shell: str) -> Path:
    """Write the script where ``shell`` finds it and, for bash and zsh, make the shell's
    start-up file load it (once); the same places the typer versions of cnnprof used.
    Returns the script's path."""
    from cnnprof.cli.output import write_output

    home = Path.home()
    text = script(cli, shell) + "\n"
    if shell == "bash":
        path = home / ".bash_completions" / f"{PROG}.sh"
        _append(home / ".bashrc", [f"source '{path}'"])
    elif shell == "zsh":
        path = home / ".zfunc" / f"_{PROG}"
        rc = home / ".zshrc"
        lines = ["fpath+=~/.zfunc; autoload -Uz compinit; compinit"]
        if b"zstyle" not in _read(rc):  # a menu to choose from, unless the user has a style
            lines.append("zstyle ':completion:*' menu select")
        _append(rc, lines)
    elif shell == "fish":
        path = home / ".config" / "fish" / "completions" / f"{PROG}.fish"
    else:  # PowerShell: the script goes into the user's profile, once
        path = _powershell_profile(shell)
        if f"-CommandName {PROG} ".encode() not in _read(path):
            _append(path, [text.rstrip("\n")])
        return path
    write_output(path, text, "--install-completion")
    return path


def _read(path: Path) -> bytes:
    """``path``'s bytes (a start-up file need not be UTF-8), or none when it does not exist."""
    from cnnprof.cli.output import writing

    with writing(path, "--install-completion"):  # unreadable: a usage error, as for writing
        return path.read_bytes() if path.is_file() else b""


def _append(path: Path, lines: list[str]) -> None:
    """Add at the end of ``path`` each of ``lines`` it does not contain yet (the file is
    replaced in one rename, its other bytes as they were)."""
    from cnnprof.cli.output import replacing

    current = _read(path)
    missing = [line for line in lines if line.encode() not in current]
    if not missing:
        return
    head = current if not current or current.endswith(b"\n") else current + b"\n"
    with replacing(path, "--install-completion") as temporary:
        temporary.write_bytes(head + ("\n".join(missing) + "\n").encode())


def _powershell_profile(shell: str) -> Path:
    import subprocess

    from cnnprof.errors import UsageError

    try:
        done = subprocess.run([shell, "-NoProfile", "-Command", "echo $profile"],
                              capture_output=True, text=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise UsageError(f"cannot ask {shell} for its profile: {exc}") from None
    return Path(done.stdout.strip())


def answer(cli: click.Command, instruction: str,
           command_line: Callable[[list[str]], list[str]]) -> int:
    """Answer a completion script: ``instruction`` is ``SHELL_complete`` (the candidates for
    the words the script passes in its own variables) or ``SHELL_source`` (the script).
    ``command_line`` rewrites the words as ``main`` does (``cnnprof MODEL`` is
    ``cnnprof profile MODEL``). Returns the exit code: 1 for an instruction not understood."""
    shell, _, action = instruction.partition("_")
    typer_bash = (shell, action) == ("complete", "bash")  # a script from the typer versions
    if typer_bash:
        shell, action = "bash", "complete"
    if shell not in shells() or action not in ("complete", "source"):
        return 1
    completer = _completer(cli, shell)
    if action == "source":
        text = completer.source()
    else:
        args, incomplete = completer.get_completion_args()
        items = completer.get_completions(command_line(args), incomplete)
        if typer_bash:  # typer's script takes plain words (and falls back to file names)
            text = "\n".join(item.value for item in items if item.type == "plain")
        else:
            text = "\n".join(completer.format_completion(item) for item in items)
    # bytes, as click writes them: a Windows console would turn "\n" into "\r\n"
    click.echo(text.encode(), nl=action == "complete")
    return 0


def complete_model(ctx: click.Context, param: click.Parameter | None,
                   incomplete: str) -> list[CompletionItem]:
    """Candidates for MODEL: the zoo's names from the static listing (no torch is imported
    on <TAB>), or file names when none matches (``path/to/file.py:Class``)."""
    del ctx, param
    from click.shell_completion import CompletionItem

    from cnnprof.listing import static_rows

    rows = static_rows() or []  # None: listing made with another torchvision; no names then
    items = [CompletionItem(row.name, help=row.description) for row in rows
             if row.name.startswith(incomplete)]
    return items or [CompletionItem(incomplete, type="file")]
