"""What every command shares: options, output, error handling."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from openlfr.errors import OpenLFRError

console = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

HomeOpt = Annotated[Path | None, typer.Option("--home", help="Data directory (default: $OPENLFR_HOME or ~/.openlfr).")]
PackOpt = Annotated[
    str | None,
    typer.Option(
        "--pack",
        help="Model pack: 'yunet-sface-dlib' (default; custody images: 'yunet-sface'), 'yunet-sface', or a local pack folder.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
GalleryOpt = Annotated[str, typer.Option("--gallery", "-g", help="Gallery name.")]


def friendly_errors(fn: F) -> F:
    """Turn expected errors into one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OpenLFRError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def engine_for(pack: str | None, home: Path | None, flip: bool = True):
    from openlfr.models import load_engine

    return load_engine(pack, home=home, flip=flip)
