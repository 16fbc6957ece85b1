"""``openlfr custody``: import the custody image database, inspect it, list rejects, delete records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from openlfr.cli.common import HomeOpt, JsonOpt, PackOpt, console, emit_json, engine_for, friendly_errors, progress_bar

custody_app = typer.Typer(help="The custody image database: bulk import, statistics, rejects, deletion.", no_args_is_help=True)

#: Exit status of an import stopped by Ctrl-C (the shell's convention for SIGINT).
EXIT_INTERRUPTED = 130


@custody_app.command("import")
@friendly_errors
def import_images(
    path: Annotated[Path, typer.Argument(help="A folder of images (record id: sub-folder name or file stem) or a CSV manifest.")],
    manifest: Annotated[bool, typer.Option("--manifest", help="PATH is a CSV manifest (automatic for *.csv files).")] = False,
    by: Annotated[str | None, typer.Option("--by", help="Who is importing (recorded; default: the CLI user).")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue an unfinished import of PATH.")] = True,
    workers: Annotated[int, typer.Option("--workers", min=1, max=16, help="Threads preparing images (1: no threads).")] = 2,
    rejects_out: Annotated[Path | None, typer.Option("--rejects-out", help="Write this import's rejects to a CSV file.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, hidden=True, help="Images per transaction.")] = 32,
    allow_outside: Annotated[bool, typer.Option(
        "--allow-outside", help="Let a manifest name images outside its own folder (refused otherwise).")] = False,
    home: HomeOpt = None,
    pack: PackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Detect, quality-check, template and store custody images; safe to interrupt and run again."""
    from openlfr.models import CUSTODY_PACK
    from openlfr.services import audit, custody
    from openlfr.storage import Store

    store = Store(home)
    engine = engine_for(pack or CUSTODY_PACK, home)
    actor = audit.current_actor()
    started_by = by or (actor.name if actor else "cli")
    with progress_bar() as bar:
        task = bar.add_task("custody import", total=None, rate="")

        def advance(r: custody.ImportReport) -> None:
            bar.update(task, completed=r.done, total=r.total, rate=f"{r.images_per_s:.1f} img/s, {r.rejected} rejected")

        report = custody.import_custody(
            store, engine, path, started_by, resume=resume, workers=workers, on_progress=advance,
            manifest=manifest or None, batch_size=batch_size, allow_outside=allow_outside,
        )  # fmt: skip
    if rejects_out is not None:
        rejects_out.write_text(custody.rejects_csv(store, report.import_id))
    if as_json:
        emit_json(report.as_dict() | {"rejects_out": str(rejects_out) if rejects_out else None})
    else:
        console.print(
            f"Import #{report.import_id} {report.status}{' (resumed)' if report.resumed else ''}: "
            f"[bold]{report.imported}[/] imported, {report.skipped} skipped as already done, "
            f"{report.rejected} rejected, of {report.total} images; {report.seconds:.1f} s, "
            f"{report.images_per_s:.1f} images/s.",
            highlight=False,
        )
        if report.rejected:
            where = rejects_out or f"'openlfr custody rejects --import {report.import_id}'"
            console.print(f"Rejected images and why: {where}", highlight=False)
        if report.status == "interrupted":
            console.print("Interrupted: run the same command again to continue where it stopped.")
    if report.status == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)


@custody_app.command("stats")
@friendly_errors
def show_stats(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """How many custody records, images and imports are stored."""
    from openlfr.services import custody
    from openlfr.storage import Store

    result = custody.stats(Store(home))
    if as_json:
        emit_json(result)
        return
    console.print(
        f"{result['records']} custody records, {result['images']} images, {result['imports']} imports, "
        f"{result['rejects']} rejected images; model pack(s): {', '.join(result['packs']) or 'none'}",
        highlight=False,
    )
    latest = result["latest_import"]
    if latest:
        console.print(
            f"Latest import #{latest['id']} ({latest['status']}) of {latest['source']} by {latest['started_by']}: "
            f"{latest['imported']} imported, {latest['rejected']} rejected, {latest['skipped']} already stored, "
            f"of {latest['total']}",
            highlight=False,
        )


@custody_app.command("rejects")
@friendly_errors
def show_rejects(
    import_id: Annotated[int | None, typer.Option("--import", help="Only this import (default: all).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write them to this CSV file instead.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Images an import refused, and why."""
    from openlfr.services import custody
    from openlfr.storage import Store

    store = Store(home)
    if out is not None:
        out.write_text(custody.rejects_csv(store, import_id))
        console.print(f"Wrote {out}")
        return
    rows = custody.rejects(store, import_id)
    if as_json:
        emit_json(rows)
        return
    table = Table(title=f"Rejected custody images ({len(rows)})", title_justify="left")
    for column in ("import", "source", "custody id", "reason"):
        table.add_column(column)
    for r in rows:
        table.add_row(str(r["import_id"]), r["source"], r["custody_id"] or "", r["reason"])
    console.print(table)


@custody_app.command("delete")
@friendly_errors
def delete(
    custody_id: Annotated[str, typer.Argument(help="The custody record to delete, with all its images.")],
    by: Annotated[str, typer.Option("--by", help="Who is deleting it (recorded).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the deletion log).")] = "deleted on request",
    home: HomeOpt = None,
) -> None:
    """Delete a custody record, its images and templates (the search index drops them at its next sync)."""
    from openlfr.services import custody
    from openlfr.storage import Store

    images = custody.delete_record(Store(home), custody_id, by, reason)
    console.print(f"Deleted custody record {custody_id} and its {images} image(s).", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(custody_app, name="custody")
