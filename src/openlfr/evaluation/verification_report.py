"""The verification (1:1) report: ROC and DET curves and TAR at FAR 1e-2 … 1e-5, each with the impostor
comparisons behind it, as one self-contained HTML page and its JSON (``openlfr evaluate verification``).

The protocols are in :mod:`openlfr.evaluation.verification`; this module runs them and writes what they
found, so the command line only parses options and prints.
"""

from __future__ import annotations

from pathlib import Path

from openlfr.core.engine import FaceEngine
from openlfr.errors import OpenLFRError
from openlfr.evaluation import aliases as alias_lists
from openlfr.evaluation import report as rep
from openlfr.evaluation import verification as ver
from openlfr.evaluation.openset import Progress


def evaluate_verification(
    engine: FaceEngine,
    out: Path,
    data: Path | None = None,
    folder: Path | None = None,
    pairs: Path | None = None,
    folds: int | None = None,
    max_non_mated: int = ver.MAX_NON_MATED,
    people: int | None = None,
    per_person: int | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: Progress = None,
    aliases: Path | None = None,
    keep_aliases: bool = False,
) -> dict:
    """LFW View 2 (``data``) and/or every pair of a labelled folder; writes the report and returns what
    ``--json`` prints: the model pack, one summary per data set and the paths of the report and its JSON.

    Impostor pairs named by the alias list (shipped for LFW and celeba-dev; ``aliases`` for another folder;
    none with ``keep_aliases``) are left out of the impostor statistics, and each data set says how many."""
    if data is None and folder is None:
        raise OpenLFRError("give --data (LFW) and/or --folder (a labelled folder)")
    sets = []
    if data is not None:
        listed = alias_lists.for_dataset(data / "lfw-deepfunneled", keep_aliases, aliases)
        sets.append(ver.lfw_view2(engine, data, pairs, folds, cache_dir, progress, listed)[0])
    if folder is not None:
        listed = alias_lists.for_dataset(folder, keep_aliases, aliases)
        sets.append(ver.folder_pairs(engine, folder, max_non_mated, seed, people, cache_dir, progress, per_person, listed))
    results = [ver.summary(s) for s in sets]
    html_path, json_path = write_verification_report(out, sets, results, engine.pack_id)
    return {"model_pack": engine.pack_id, "datasets": results, "report": str(html_path), "json": str(json_path)}


def write_verification_report(out: Path, sets: list[ver.PairScores], results: list[dict], pack_id: str) -> tuple[Path, Path]:
    """verification.html (ROC, DET, TAR at each FAR with the comparisons behind it) and verification.json."""
    body = [rep.heading("Curves"), rep.image(ver.roc_figure(sets), "ROC curve"), rep.image(ver.det_figure(sets), "DET curve")]
    for r in results:
        body.append(rep.heading(r["dataset"]))
        body.append(
            rep.paragraph(
                f"{r['images']:,} images of {r['people']:,} people ({r['images_without_face']} without a detected face); "
                f"{r['mated_comparisons']:,} mated and {r['impostor_comparisons']:,} impostor comparisons; "
                f"equal error rate {r['equal_error_rate'] * 100:.2f}% at threshold {r['eer_threshold']:.3f}."
            )
        )
        if "ten_fold" in r:
            tf = r["ten_fold"]
            body.append(
                rep.paragraph(
                    f"10-fold accuracy (threshold chosen on nine folds, tested on the tenth): "
                    f"{tf['mean_accuracy'] * 100:.2f}% ± {tf['std_accuracy'] * 100:.2f}%."
                )
            )
        body.append(
            rep.table(
                [
                    "FAR",
                    "TAR",
                    "threshold (accept above)",
                    "false accepts",
                    "impostor comparisons",
                    "mated comparisons",
                    "support",
                ],
                [
                    [
                        f"{t['far']:g}",
                        rep.percent(t["tar"]),
                        rep.cell(t["threshold_accept_above"]),
                        t["false_accepts"],
                        t["impostor_comparisons"],
                        t["mated_comparisons"],
                        t["status"],
                    ]
                    for t in r["tar_at_far"]
                ],
            )
        )
        body.append(rep.bullets(r["notes"]))
    headline = []
    for r in results:
        cells = ", ".join(
            f"{rep.percent(t['tar'])} at FAR {t['far']:g}"
            + ("" if t["status"] == "supported" else " (not supported by the data)")
            for t in r["tar_at_far"]
        )
        headline.append(f"{r['dataset']}: TAR {cells}.")
    how = [
        "A comparison scores two images; at or above a threshold the system calls them the same person.",
        "TAR (true accept rate): the share of mated pairs (two images of one person) accepted. FAR (false accept rate): the "
        "share of impostor pairs (two different people) accepted. Each row fixes FAR and reports the TAR there.",
        "Support rule (Doddington's rule of 30): a FAR is supported when at least 30 impostor comparisons lie above its "
        "threshold (impostor comparisons × FAR >= 30). Below that the figure is indicative only; when there are fewer "
        "impostor comparisons than 1/FAR, not one false accept can be observed and the FAR cannot be measured.",
        "ROC: TAR against FAR on a log scale (up and left is better). DET: the two error rates, false non-match against "
        "false match, on log scales (down and left is better). Curves stop at 1/N impostor comparisons.",
        "LFW is press photographs of mostly well-known adults; accuracy on custody images or CCTV differs and must be measured "
        "on the force's own data (pass it with --folder).",
    ]
    data = {"model_pack": pack_id, "fars": list(ver.FARS), "datasets": results}
    return rep.write(out, "verification", f"Verification accuracy — model pack {pack_id}", headline, body, how, data)
