"""The demographic differential report: every figure per group of any attribute the force supplies, with 95%
Wilson intervals, Holm-corrected tests of the differences, and a plain statement where a sample is too small
to support a claim (``openlfr evaluate demographics``).

The statistics are :mod:`openlfr.evaluation.demographics`; this module runs them on a data set and writes
the report, so the command line only parses options and prints.
"""

from __future__ import annotations

from pathlib import Path

from openlfr.core.engine import FaceEngine
from openlfr.evaluation import aliases as alias_lists
from openlfr.evaluation import demographics as demo
from openlfr.evaluation import openset
from openlfr.evaluation import report as rep


def evaluate_demographics(
    engine: FaceEngine,
    data: Path,
    groups: Path,
    out: Path,
    threshold: float | None = None,
    watchlist_size: int = 1000,
    people: int | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: openset.Progress = None,
) -> dict:
    """Figures per group on LFW or a labelled folder at ``threshold`` (default: the pack's alert threshold);
    writes the report and returns its data with the paths of the report and its JSON (what ``--json`` prints)."""
    labels = demo.read_groups(groups)
    threshold = engine.alert_threshold if threshold is None else threshold
    folder = openset.dataset_dir(data)
    names = openset.folder_names(folder, people)
    templates = openset.template_cache(engine, folder, names, cache_dir, progress)
    enrollable = openset.enrollable_images(engine, folder, names, cache_dir, progress)  # a watchlist holds no other
    size = min(watchlist_size, len(openset.eligible_people(templates, names, enrollable)))
    result = demo.evaluate(templates, names, labels, threshold, size, seed, aliases=alias_lists.for_dataset(folder),
                           enrollable=enrollable)  # fmt: skip
    result |= {"model_pack": engine.pack_id, "dataset": str(folder), "groups_file": str(groups), "small_rule": demo.SMALL_RULE,
               "references": openset.references_note(templates, enrollable)}  # fmt: skip
    html_path, json_path = write_demographics_report(out, result)
    return result | {"report": str(html_path), "json": str(json_path)}


def write_demographics_report(out: Path, result: dict) -> tuple[Path, Path]:
    """demographics.html (per-group rates with intervals, tests between groups, small-sample warnings) and .json."""
    body: list[str] = []
    warnings: list[str] = []
    for attribute, a in result["attributes"].items():
        body.append(rep.heading(f"Attribute: {attribute}"))
        body.append(
            rep.paragraph(
                f"{a['people_labelled']:,} people labelled, {a['people_unlabelled']:,} not labelled (left out of this attribute)."
            )
        )
        rows = []
        for g, d in a["groups"].items():
            row: list = [g, d["people"]]
            for figure in demo.FIGURES:
                r = d[figure]
                row.append(
                    f"{rep.percent(r['rate'])} [{rep.percent(r['ci95'][0])}–{rep.percent(r['ci95'][1])}] "
                    f"({r['errors_or_hits']:,}/{r['trials']:,})"
                )
                if r["too_small"]:
                    warnings.append(
                        f"{attribute} = {g}: {figure.upper()} is too small to support a claim ({'; '.join(r['too_small'])})."
                    )
            rows.append(row)
        body.append(rep.table(["group", "people", "FNMR", "FMR", "TPIR", "FPIR"], rows))
        body.append(rep.image(demo.interval_figure(attribute, a), f"Rates and intervals by {attribute}"))
        body.append(
            rep.table(
                ["figure", "group A", "group B", "rate A", "rate B", "z", "p", "p (Holm)", "significant", "caution"],
                [
                    [
                        t["figure"].upper(),
                        t["group_a"],
                        t["group_b"],
                        rep.percent(t["rate_a"], 3),
                        rep.percent(t["rate_b"], 3),
                        t["z"],
                        t["p"],
                        t["p_holm"],
                        "yes" if t["significant"] else "no",
                        t["caution"],
                    ]
                    for t in a["tests"]
                ],
            )
        )
    if warnings:
        body.insert(0, rep.heading("Samples too small to support a claim"))
        body.insert(1, rep.bullets(warnings))
    significant = [t for a in result["attributes"].values() for t in a["tests"] if t["significant"]]
    headline = [
        f"Threshold {result['threshold']:g}; open-set figures from one watchlist of {result['watchlist_size']:,} people "
        f"(seed {result['seed']}); model pack {result['model_pack']}; groups from {result['groups_file']}.",
        f"{len(significant)} difference(s) between groups are significant after Holm correction (p < 0.05)"
        + (
            ": " + "; ".join(f"{t['figure'].upper()} {t['group_a']} vs {t['group_b']}" for t in significant[:8])
            if significant
            else "."
        ),
        f"{len(warnings)} group figure(s) rest on samples too small to support a claim (rule: {demo.SMALL_RULE}).",
    ]
    how = [
        "Groups come from the groups file the force supplied; the report is only as good as those labels. LFW has no "
        "demographic labels, so any grouping of LFW is a demonstration of the method, not a finding about people.",
        "FNMR: share of pairs of images of the same person scored below the threshold (missed). FMR: share of pairs of two "
        "different people of the same group scored at or above it. TPIR / FPIR: as in the identification report, for the "
        "group's probes against one watchlist of everybody, which holds only photographs enrolment's quality limits "
        "accept" + (f" ({result['references']['refused']:,} refused)." if "references" in result else "."),
        "Each rate is shown as rate [95% Wilson interval] (errors or hits / comparisons or probes). The interval assumes "
        "independent comparisons; comparisons sharing a person are not, so with few people the real uncertainty is wider.",
        "Test: a two-proportion z-test for every pair of groups, with p-values Holm-corrected across the pairs of each "
        "figure. 'Significant' means a difference this large would arise by chance less than 5% of the time if the groups "
        "were equally accurate. 'Not significant' with small samples does not show the groups are equal.",
        f"Too small: {demo.SMALL_RULE}. Such figures are shown but cannot carry a claim either way.",
    ]
    return rep.write(out, "demographics", "Accuracy by group (demographic differential)", headline, body, how, result)
