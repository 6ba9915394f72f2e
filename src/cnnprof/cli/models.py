"""``cnnprof models [--filter TEXT]``: what the zoo can build."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models(
        filter_text: str = typer.Option(None, "--filter", help="Only names/tasks containing TEXT."),
        fmt: str = typer.Option("table", "--format", "-f", help="table or json."),
    ) -> None:
        """List the models the zoo can build, with their default inputs.

        Also accepted as MODEL: timm:NAME (timm models), hf:MODEL_TYPE, hf:DIR, hf:ORG/NAME
        (Hugging Face configs, offline; --filter hf lists examples), path/to/file.py:Class
        and package.module:factory (your own models, with --arg key=value).
        """
        import json

        from rich.table import Table

        from cnnprof.render.console import make_console
        from cnnprof.zoo import list_models

        rows = list_models(filter_text)
        if fmt == "json":
            typer.echo(json.dumps([r.__dict__ for r in rows], indent=2))
            return
        table = Table("Name", "Source", "Task", "Default input", "Description")
        for r in rows:
            table.add_row(r.name, r.source, r.task, r.default_input, r.description)
        make_console().print(table)
        typer.echo(f"{len(rows)} models; also timm:NAME, hf:MODEL_TYPE|DIR|ORG/NAME "
                   "(--filter hf), file.py:Class, package.module:factory")
