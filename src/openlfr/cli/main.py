"""``openlfr``: thin command-line interface over the services. Each command parses, calls, prints."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from openlfr.cli import audit as audit_cli
from openlfr.cli import custody as custody_cli
from openlfr.cli import db as db_cli
from openlfr.cli import evaluate_reports, lfr, serve, threshold, users
from openlfr.cli import vans as vans_cli
from openlfr.cli.common import (
    GalleryOpt,
    HomeOpt,
    JsonOpt,
    PackOpt,
    console,
    emit_json,
    engine_for,
    friendly_errors,
    progress_bar,
)

app = typer.Typer(
    help="OpenLFR: accountable live and retrospective facial recognition.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold biometric data: never print them
    add_completion=False,
)
evaluate_app = typer.Typer(help="Measure accuracy on labelled data.", no_args_is_help=True)
app.add_typer(evaluate_app, name="evaluate")


@app.callback()
def command_line_identity(ctx: typer.Context) -> None:
    """Attribute audit events of this command to the operating-system user (source "cli") unless a
    command names the officer itself (``--by``)."""
    import getpass

    from openlfr.services import audit

    token = audit.set_actor(audit.Actor(f"cli:{getpass.getuser()}", None, "cli"))
    ctx.call_on_close(lambda: audit.reset_actor(token))


lfr.register(app)
users.register(app)
audit_cli.register(app)
serve.register(app)
custody_cli.register(app)
db_cli.register(app)
threshold.register(app)
vans_cli.register(app)
evaluate_app.command("walkby")(friendly_errors(lfr.evaluate_walkby))
evaluate_reports.register(evaluate_app)


@app.command()
@friendly_errors
def enrol(
    images: Annotated[list[Path], typer.Argument(help="One or more reference images of the person.")],
    reference: Annotated[str, typer.Option("--id", help="Reference id of the person (unique in the gallery).")],
    name: Annotated[str, typer.Option("--name", help="The person's name.")],
    gallery: GalleryOpt = "default",
    home: HomeOpt = None,
    pack: PackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a person with one or more reference images to a gallery (all images checked before any is stored)."""
    from openlfr.services.gallery import enrol as enrol_person
    from openlfr.storage import Store

    store = Store(home)
    result = enrol_person(store, engine_for(pack, home), reference, name, list(images), gallery=gallery)
    if as_json:
        emit_json(result.as_dict())
        return
    console.print(
        f"Enrolled [bold]{result.name}[/] ({result.reference}) in gallery '{result.gallery}': "
        f"{len(result.images)} image(s) added, {result.total_images} in total."
    )
    for img in result.images:
        q = img.quality
        console.print(
            f"  {img.source}: eyes {q['inter_eye_px']:.0f} px apart, sharpness {q['sharpness']:.0f}, "
            f"frontalness {q['frontalness']:.2f}, detector {q['detector_score']:.2f}"
        )


@app.command()
@friendly_errors
def identify(
    image: Annotated[Path, typer.Argument(help="Image to search.")],
    gallery: GalleryOpt = "default",
    threshold: Annotated[
        float | None, typer.Option(help="Minimum similarity score (default: the model pack's alert threshold).")
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=200, help="Candidates per face.")] = 5,
    home: HomeOpt = None,
    pack: PackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List candidates for every face in an image, or say plainly that nobody matched."""
    from openlfr.services.gallery import identify as identify_faces
    from openlfr.storage import Store

    store = Store(home)
    engine = engine_for(pack, home)
    used = engine.alert_threshold if threshold is None else threshold
    results = identify_faces(store, engine, image, gallery=gallery, threshold=used, k=top_k)
    if as_json:
        emit_json(
            {
                "image": str(image),
                "gallery": gallery,
                "threshold": used,
                "faces": [r.as_dict() for r in results],
            }
        )
        return
    print_identification(results, str(image), used)


def print_identification(results: list, source: str, threshold: float) -> None:
    if not results:
        console.print(f"No face found in {source}.")
        return
    for i, face in enumerate(results, 1):
        x, y, w, h = face.box
        main = " (main face)" if face.main and len(results) > 1 else ""
        where = f"face {i} of {len(results)}{main} at x={x:.0f} y={y:.0f} ({w:.0f}x{h:.0f} px)"
        if not face.candidates:
            console.print(f"{where}: [bold]nobody matched[/] (no score at or above {threshold:.3f}).")
            continue
        table = Table(title=where, title_justify="left")
        table.add_column("rank", justify="right")
        table.add_column("reference")
        table.add_column("name")
        table.add_column("score", justify="right")
        for rank, c in enumerate(face.candidates, 1):
            table.add_row(str(rank), c.reference, c.name, f"{c.score:.3f}")
        console.print(table)
    console.print(f"Candidates are leads for a person to review, not identifications (threshold {threshold:.3f}).")


@app.command()
@friendly_errors
def people(gallery: GalleryOpt = "default", home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List the people enrolled in a gallery."""
    from openlfr.services.gallery import list_people
    from openlfr.storage import Store

    rows = list_people(Store(home), gallery)
    if as_json:
        emit_json(rows)
        return
    table = Table(title=f"Gallery '{gallery}'")
    for col in ("reference", "name", "images"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["reference"], r["name"], str(r["images"]))
    console.print(table)


@evaluate_app.command("lfw")
@friendly_errors
def evaluate_lfw(
    data: Annotated[Path, typer.Option("--data", help="LFW folder holding pairs.txt and lfw-deepfunneled/.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the ROC plot and JSON result.")] = Path("lfw-results"),
    flip: Annotated[bool, typer.Option(help="Average each template with its mirror image.")] = True,
    folds: Annotated[int | None, typer.Option(min=1, max=10, help="Use only the first N folds.")] = None,
    home: HomeOpt = None,
    pack: PackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """LFW View 2: 10 folds, threshold chosen on 9 and tested on the 10th; mean accuracy ± std."""
    import time

    from openlfr.evaluation import lfw

    engine = engine_for(pack, home, flip=flip)
    started = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task("LFW templates", total=None, rate="")

        def advance(done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=done, total=total, rate=f"{rate:.0f} img/s")

        result = lfw.evaluate(engine, data, limit_folds=folds, progress=advance)
    summary = result.as_dict() | {
        "model_pack": engine.pack_id,
        "flip_averaging": flip,
        "seconds": round(time.perf_counter() - started, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    plot = out / "lfw_roc.png"
    lfw.write_roc_plot(result, plot, f"LFW View 2, {engine.pack_id}")
    (out / "lfw_result.json").write_text(json.dumps(summary, indent=2) + "\n")
    summary["roc_plot"] = str(plot)
    if as_json:
        emit_json(summary)
        return
    console.print(
        f"LFW View 2 ({len(result.fold_accuracies)} folds, {summary['pairs']} pairs, model pack {engine.pack_id}, "
        f"flip {'on' if flip else 'off'}):\n"
        f"  mean accuracy [bold]{result.mean * 100:.2f}%[/] ± {result.std * 100:.2f}%\n"
        f"  TAR at FAR 1e-3: {result.tar_at_far(1e-3) * 100:.2f}%\n"
        f"  images without a detected face: {result.detector_fallbacks}\n"
        f"  ROC plot: {plot}\n  result: {out / 'lfw_result.json'}"
    )


@app.command()
@friendly_errors
def demo(
    home: Annotated[
        Path | None, typer.Option("--home", help="Data directory for the demo (default: a new temporary one).")
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the temporary data directory afterwards.")] = False,
) -> None:
    """The whole live loop on images that ship with dependencies: watchlist, authorised deployment, live
    camera, alert for Grace Hopper and none for Eileen Collins, an officer's outcome, the published record."""
    from openlfr.cli.lfr import print_record
    from openlfr.models.packs import pack_title
    from openlfr.services.demo import run_demo, stored_files_in_words

    temporary = home is None
    root = Path(tempfile.mkdtemp(prefix="openlfr-demo-")) if temporary else home
    try:
        console.rule("OpenLFR demo: live facial recognition, end to end")
        console.print(f"Data directory: {root} (SQLite and encrypted files; nothing to start)")
        engine = engine_for(None, root)
        console.print(f"Face recogniser: {pack_title(engine.pack_id)} (the default for watchlists and live deployments)")
        result = run_demo(engine, root, say=lambda line: console.print(line, highlight=False))
        print_record(result.record)
        alerted = {a["name"] for a in result.alerts}
        console.print(
            f"Alerted: {', '.join(sorted(alerted)) or 'nobody'}. Eileen Collins raised no alert, and nothing derived "
            f"from her face was stored: the data directory holds only {stored_files_in_words(result.files_left)}."
        )
    finally:
        if temporary and not keep:
            shutil.rmtree(root, ignore_errors=True)
        elif temporary:
            console.print(f"Kept {root}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
