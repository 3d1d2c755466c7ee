"""``attn annotate`` label commands: maps to Label Studio (push), the labels back into the dataset (pull), and
checking the labels (agreement, sheet, baseline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cli.common import DataDirOpt, ModelOpt, handle_errors

KindOpt = Annotated[
    str, typer.Option("--kind", help="raw (attention weights) or normed (weight-normed, Kobayashi et al. 2020).")
]
ProjectOpt = Annotated[
    Optional[str],
    typer.Option("--project", help="Label Studio project title (3 to 50 characters). Default: attn-<kind>."),
]


@handle_errors
def push_cmd(
    kind: KindOpt,
    task: Annotated[str, typer.Option("--task", help="GLUE task whose examples give the maps (e.g. MRPC).")],
    n: Annotated[int, typer.Option("--n", help="How many maps to push.")] = 50,
    model: ModelOpt = None,
    project: ProjectOpt = None,
    model_state: Annotated[
        Optional[str],
        typer.Option(
            "--model-state",
            help="Tag for ids and the dataset: pre or ft. Default: ft for a fine-tuned run folder, else pre.",
        ),
    ] = None,
    heads_per_example: Annotated[
        int, typer.Option("--heads-per-example", help="Random (layer, head) maps per example.")
    ] = 2,
    min_tokens: Annotated[int, typer.Option("--min-tokens", help="Skip examples shorter than this many tokens.")] = 8,
    max_tokens: Annotated[
        int,
        typer.Option("--max-tokens", help="Skip examples longer than this many tokens (long maps are hard to read)."),
    ] = 64,
    max_length: Annotated[int, typer.Option("--max-length", help="Maximum tokens per input.")] = 128,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the choice of examples and heads.")] = 0,
    predictions: Annotated[
        bool,
        typer.Option(
            "--predictions/--no-predictions",
            help="Add pre-annotations (the ML backend's with --backend, else the shipped classifier, else the "
            "heuristic). Use --no-predictions for a blind pass.",
        ),
    ] = True,
    order: Annotated[
        str,
        typer.Option(
            "--order",
            help="sequential (as sampled), random (shuffled with --seed) or uncertain: the maps the classifier is "
            "least sure of "
            "(lowest top-class probability) first, chosen among --pool x --n sampled maps. Label Studio shows them in "
            "this order.",
        ),
    ] = "sequential",
    per_type: Annotated[
        int,
        typer.Option(
            "--per-type",
            help="With --order uncertain: first the K least certain maps of each predicted type, in turns, so rare "
            "types are not starved; then the rest.",
        ),
    ] = 0,
    pool: Annotated[
        int,
        typer.Option(
            "--pool", help="With --order uncertain: sample this many times --n maps and push the --n least certain."
        ),
    ] = 4,
    backend: Annotated[
        Optional[str],
        typer.Option(
            "--backend",
            help="URL of a running 'attn annotate backend': its predictions (and scores) are used and it is connected "
            "to the project, so retrained models reach the labeling page.",
        ),
    ] = None,
    annotators_per_map: Annotated[
        Optional[int],
        typer.Option(
            "--annotators-per-map",
            help="How many annotators label each task (Label Studio's 'maximum annotations'): 2 or more for a group "
            "measuring its agreement.",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Render maps of a task's dev examples to PNG and import them as tasks of a Label Studio project.

    The project is created with the five-type labeling config when missing, reused otherwise (a project with
    another config is refused). Maps already in the project are skipped. Needs LABEL_STUDIO_API_KEY.
    """
    from attnpatterns.annotate.labelstudio import connect, push
    from attnpatterns.annotate.ordering import check_order
    from attnpatterns.annotate.sample import SampleConfig, sample_maps
    from attnpatterns.errors import UserError

    check_order(order)
    if pool < 1:
        raise UserError(f"--pool must be at least 1, got {pool}.")
    if per_type and order != "uncertain":
        raise UserError("--per-type applies to --order uncertain only; add --order uncertain or drop --per-type.")
    if backend:  # an unreachable backend is reported before the model runs
        from attnpatterns.annotate.backend_client import check_reachable

        check_reachable(backend)
    from attnpatterns.data.loaders import require_data

    require_data(task, data_dir, ("dev",))  # before the model loads
    cfg = SampleConfig(
        kind=kind,
        task=task,
        n=n * (pool if order == "uncertain" else 1),
        model=model,
        model_state=model_state,
        heads_per_example=heads_per_example,
        min_tokens=min_tokens,
        max_tokens=max_tokens,
        max_length=max_length,
        seed=seed,
        data_dir=data_dir,
    )
    conn = connect()  # fail on a bad URL or key before the model runs
    items = sample_maps(cfg, show_progress=True)
    res = push(
        items,
        project or f"attn-{kind}",
        predictions=predictions,
        conn=conn,
        show_progress=True,
        order=order,
        per_type=per_type,
        n=n,
        seed=seed,
        backend=backend,
        annotators_per_map=annotators_per_map,
    )
    typer.echo(
        f"{'created' if res.created else 'updated'} project '{res.project}' (id {res.project_id}) at {conn.url}: "
        f"{res.imported} tasks imported, {res.skipped_existing} already there, in {res.order} order; "
        f"pre-annotations: {res.suggested_by}"
    )
    if order == "uncertain" and res.first:
        typer.echo("first in the queue: " + ", ".join(f"{m} ({lab}, {s:.2f})" for m, lab, s in res.first))
    if res.backend:
        typer.echo(
            f"ML backend {res.backend} connected: Label Studio asks it for predictions; 'Start training' in the "
            "project's Model settings retrains it on the labels"
        )
    typer.echo(f"label them at {conn.url}/projects/{res.project_id}/data")


@handle_errors
def pull_cmd(
    project: Annotated[str, typer.Option("--project", help="Label Studio project title.")],
    out: Annotated[Path, typer.Option("--out", help="Dataset folder: <out>/<kind>/labels.tsv and maps.npz.")] = Path(
        "annotations"
    ),
    annotator: Annotated[
        Optional[str],
        typer.Option("--annotator", help="Only this user's (e-mail) annotations, e.g. for a second, blind pass."),
    ] = None,
    consensus: Annotated[
        str,
        typer.Option(
            "--consensus",
            help="What labels.tsv gets per map: newest (the most recent annotation of anyone) or majority "
            "(the consensus of the project's annotators, with status, votes and share; ties by GUIDELINES rule 10).",
        ),
    ] = "newest",
    round_name: Annotated[
        str,
        typer.Option(
            "--round", help="Round recorded in the annotator files (e.g. 2 for a relabel under revised guidelines)."
        ),
    ] = "1",
) -> None:
    """Export a project's annotations: every annotator's labels to <out>/<kind>/annotators/<user>.tsv (one row per
    map), and one row per map to <out>/<kind>/labels.tsv + maps.npz (upsert by map id).

    Everything is checked before anything is written: an unknown label, a task without its map or image, or
    a project with another labeling config leaves the dataset untouched. Needs LABEL_STUDIO_API_KEY.
    """
    from attnpatterns.annotate.pull import pull

    res = pull(project, out, annotator=annotator, consensus=consensus, round_name=round_name)
    if not res.kinds:
        typer.echo(f"no annotated tasks in '{project}' ({res.skipped_tasks} without annotations); nothing written.")
        return
    for kind, r in res.kinds.items():
        typer.echo(
            f"{out}/{kind}: {len(r.added)} added, {len(r.updated)} updated, {len(r.unchanged)} unchanged "
            f"({res.mode} label per map)"
        )
        files = res.annotator_files.get(kind, {})
        typer.echo(f"{out}/{kind}/annotators: {', '.join(f'{p.name}' for p in files.values())}")
    typer.echo(
        f"{res.annotated_tasks} annotated maps by {', '.join(res.annotators)}; {res.skipped_tasks} tasks not "
        f"annotated yet"
    )


@handle_errors
def agreement_cmd(
    kind: Annotated[
        Optional[str],
        typer.Option(
            "--kind", help="raw or normed. Needed with --data; with --project, default every kind the project holds."
        ),
    ] = None,
    data: Annotated[
        Path,
        typer.Option("--data", help="Dataset folder holding <kind>/annotators/<name>.tsv, one file per annotator."),
    ] = Path("annotations"),
    project: Annotated[
        Optional[str],
        typer.Option(
            "--project",
            help="Read the annotators' labels from this Label Studio project instead of --data (needs "
            "LABEL_STUDIO_API_KEY).",
        ),
    ] = None,
    rounds: Annotated[
        Optional[str],
        typer.Option(
            "--rounds",
            help="Only these rounds of labels, e.g. 1,3 (the full passes; 2 is the relabel of disputed maps); "
            "default all. With --data only.",
        ),
    ] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Also write the whole report as JSON here.")] = None,
) -> None:
    """Agreement between annotators: pairwise Cohen's kappa (on the maps both labelled), Fleiss' kappa over the
    maps all labelled (overall and per class, the class against the rest), specific agreement per class, and the
    confusion of every pair (rows: the first annotator). From <data>/<kind>/annotators/, or from the annotations of
    a Label Studio project (--project)."""
    from attnpatterns.errors import UserError

    if project is not None:
        from attnpatterns.annotate.pull import project_agreement

        if rounds:
            raise UserError("--rounds applies to --data only; drop it with --project.")
        reports = project_agreement(project, kind)
    else:
        from attnpatterns.annotate.agreement import report, vote_table
        from attnpatterns.annotate.dataset import check_kind, read_annotators

        if kind is None:
            raise UserError("--kind is needed with --data (raw or normed); or pass --project.")
        check_kind(kind)
        labels = read_annotators(data, kind, rounds=rounds.split(",") if rounds else None)
        if not labels:
            raise UserError(
                f"{data}/{kind}/annotators/ holds no annotator's labels; put one <name>.tsv per annotator there."
            )
        reports = {kind: {"kind": kind, **report(vote_table(labels))}}
    for rep in reports.values():
        _print_agreement(rep)
    if out is not None:
        from attnpatterns.io import write_json

        write_json(out, reports[kind] if kind and project is None else reports)
        typer.echo(f"wrote {out}")


def _print_agreement(rep: dict) -> None:
    from attnpatterns.patterns import PATTERN_VALUES

    short = {"vertical": "V", "diagonal": "D", "vertical+diagonal": "VD", "block": "B", "heterogeneous": "H"}
    where = f" (Label Studio project '{rep['project']}')" if rep.get("project") else ""
    typer.echo(f"{rep['kind']}{where}: {len(rep['annotators'])} annotators, {rep['maps']} maps")
    for p in rep["pairwise"]:
        typer.echo(
            f"  {p['a']} vs {p['b']}: {p['n']} maps, Cohen's kappa {p['kappa']:.3f}, agreement {p['agreement']:.1%}"
        )
    if rep["fleiss"]:
        f = rep["fleiss"]
        typer.echo(
            f"Fleiss' kappa over the {f['n']} maps all {f['raters']} labelled: {f['kappa']:.3f} "
            f"(unanimous {f['unanimous']:.0%}); per class: "
            + ", ".join(f"{short[c]} {v:.2f}" for c, v in f["per_class"].items())
        )
    else:
        typer.echo("Fleiss' kappa: no map was labelled by every annotator")
    typer.echo(
        "specific agreement per class: "
        + ", ".join(f"{short[c]} {v:.2f}" for c, v in rep["specific_agreement"].items())
    )
    for p in rep["pairwise"]:
        typer.echo(f"confusion {p['a']} (rows) vs {p['b']} (columns): " + ", ".join(short[c] for c in PATTERN_VALUES))
        for c, row in zip(PATTERN_VALUES, p["confusion"]):
            typer.echo(f"  {short[c]:>2} " + " ".join(f"{v:4d}" for v in row))


@handle_errors
def sheet_cmd(
    kind: KindOpt,
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNG pages (sheet-<kind>-<page>.png).")],
    data: Annotated[Path, typer.Option("--data", help="Dataset folder.")] = Path("annotations"),
    per_page: Annotated[int, typer.Option("--per-page", help="Maps per page.")] = 48,
    label: Annotated[Optional[str], typer.Option("--label", help="Only maps with this label.")] = None,
) -> None:
    """Contact sheets of the annotated maps, each titled with its id and label, for checking labels by eye."""
    from attnpatterns.annotate.dataset import load
    from attnpatterns.annotate.render import render_contact_sheet
    from attnpatterns.errors import UserError
    from attnpatterns.patterns import parse_pattern

    if per_page < 1:
        raise UserError(f"--per-page must be positive, got {per_page}.")
    ds = load(data, kind)
    rows = [r for r in ds.rows if label is None or r["label"] == parse_pattern(label).value]
    if not rows:
        raise UserError(f"no {kind} maps{' labelled ' + label if label else ''} in {data}/{kind}.")
    pages = [rows[i : i + per_page] for i in range(0, len(rows), per_page)]
    for k, page in enumerate(pages):
        path = out / f"sheet-{kind}-{k + 1:03d}.png"
        render_contact_sheet(
            [(r["id"], ds.maps[r["id"]]) for r in page], path, titles={r["id"]: r["label"] for r in page}
        )
    typer.echo(f"wrote {len(pages)} page(s) of {len(rows)} maps to {out}")


@handle_errors
def baseline_cmd(
    kind: KindOpt,
    data: Annotated[Path, typer.Option("--data", help="Dataset folder.")] = Path("annotations"),
    retokenize: Annotated[
        bool,
        typer.Option(
            "--retokenize/--no-retokenize",
            help="Rows without a tokens column: tokenize their GLUE dev example "
            "again (packaged MiniLM tokenizer), so the heuristic knows [CLS]/[SEP], punctuation and the pair boundary.",
        ),
    ] = True,
    data_dir: DataDirOpt = None,
) -> None:
    """Score the heuristic pre-annotation (attnpatterns.patterns.suggest) against the labels: the baseline
    the pattern CNN has to beat. Tokens come from the dataset's tokens column, else (--retokenize) from the
    GLUE example named in the row, kept only when their number matches the map's size."""
    from attnpatterns.annotate.baseline import score_heuristic
    from attnpatterns.patterns import PATTERN_VALUES

    s = score_heuristic(data, kind, retokenize=retokenize, data_dir=data_dir)
    typer.echo(
        f"{kind}: {s['n']} maps ({s['with_tokens']} with tokens); heuristic accuracy {s['accuracy']:.3f}, "
        f"weighted F1 {s['weighted_f1']:.3f}"
    )
    typer.echo("confusion (rows = label, columns = heuristic): " + ", ".join(PATTERN_VALUES))
    for lab, row in zip(PATTERN_VALUES, s["confusion"]):
        typer.echo(f"  {lab:>18} " + " ".join(f"{int(v):4d}" for v in row))
