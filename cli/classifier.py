"""``attn classifier``: train, evaluate and apply the pattern classifier."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from attnpatterns.classifier.recipes import RECIPES, SHIPPED
from cli.common import handle_errors


class Kind(str, Enum):
    raw = "raw"
    normed = "normed"


# --recipe's choices: the names of attnpatterns.classifier.recipes.RECIPES, the shipped one first
RecipeName = Enum("RecipeName", {name: name for name in RECIPES}, type=str)  # type: ignore[misc]


KindOpt = Annotated[Kind, typer.Option("--kind", help="Map kind: raw attention maps or weight-normed maps.")]
DataOpt = Annotated[
    Path, typer.Option("--data", help="Annotation folder holding <kind>/labels.tsv and <kind>/maps.npz.")
]
ClassifierOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--classifier",
        help="A pattern-classifier .safetensors (its .json card beside it). Default: "
        "models/pattern-cnn-<kind>.safetensors.",
    ),
]


def register(app: typer.Typer) -> None:
    sub = typer.Typer(
        no_args_is_help=True,
        help="Train, evaluate and apply the classifier that labels attention maps with the five pattern types.",
    )
    sub.command("train")(train_cmd)
    sub.command("evaluate")(evaluate_cmd)
    sub.command("predict")(predict_cmd)
    app.add_typer(sub, name="classifier")


def format_rows(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[f"{x:.3f}" if isinstance(x, float) else str(x) for x in r] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = [
        "  ".join(c[i].ljust(widths[i]) if i == 0 else c[i].rjust(widths[i]) for i in range(len(c))) for c in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _confusion_text(cm) -> str:
    from attnpatterns.classifier.labels import LABELS

    short = ["vert", "diag", "v+d", "block", "het"]
    return format_rows([[lab] + [int(x) for x in row] for lab, row in zip(LABELS, cm)], ["true \\ predicted"] + short)


@handle_errors
def train_cmd(
    kind: KindOpt,
    data: DataOpt = Path("annotations"),
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out", help="The .safetensors to write (card beside it). Default: models/pattern-cnn-<kind>.safetensors."
        ),
    ] = None,
    recipe: Annotated[
        RecipeName,
        typer.Option(
            "--recipe",
            help="cnn8soft (shipped, the default): cnn8wide trained on each map's vote shares (soft labels), no "
            "dropout, 80 synthetic maps per type. cnn8wide: the features' logistic regression (fitted first, then "
            "held fixed) plus the cnn8 network, whose output starts at zero; checkpoint by validation loss. "
            "cnn8: the CNN on maps area-resized to 8x8 (mass scaling) with the 43 pattern "
            "features beside it, 40 synthetic maps per type. features: logistic regression on the 43 pattern "
            "features of each map, L2 strength chosen on the validation slice, no CNN. improved: the CNN on maps "
            "resized to 16x16 (mass scaling) with the pattern features beside it, 40 synthetic maps per type "
            "added to the training part. original: the study's CNN recipe (zero-pad to the largest map, no "
            "scaling, no augmentation).",
        ),
    ] = RecipeName[SHIPPED],  # type: ignore[valid-type]
    compare: Annotated[
        bool,
        typer.Option(
            "--compare/--no-compare",
            help="Also train the original recipe and each improvement on the same split and record the comparison in "
            "the card.",
        ),
    ] = False,
    folds: Annotated[
        int,
        typer.Option(
            "--folds",
            help="Also run stratified k-fold cross-validation with this many folds (0 = off): of the trained recipe, "
            "or with --compare of every compared recipe.",
        ),
    ] = 0,
    synthetic: Annotated[
        Optional[int],
        typer.Option(
            "--synthetic",
            help="Synthetic maps per type added to the training part (never to validation or test); overrides the "
            "recipe's number (cnn8soft: 80; cnn8wide, cnn8, improved, features: 40; original: 0).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split, the initialisation and the batches.")] = 0,
    epochs: Annotated[
        int,
        typer.Option(
            "--epochs",
            help="Maximum epochs of the CNN recipes (best-on-validation checkpoint; stops after --patience epochs "
            "without gain).",
        ),
    ] = 80,
    patience: Annotated[int, typer.Option("--patience")] = 30,
    test_fraction: Annotated[float, typer.Option("--test-fraction", help="Held-out share (stratified).")] = 0.2,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Share of the training part used to choose the checkpoint.")
    ] = 0.15,
    threads: Annotated[int, typer.Option("--threads", help="torch CPU threads (at least 1).")] = 2,
    annotator: Annotated[
        Optional[str],
        typer.Option(
            "--annotator",
            help="Train on one annotator's own labels (<data>/<kind>/annotators/NAME.tsv, only the maps they "
            "labelled) instead of the consensus; the default --out is then "
            "classifiers/pattern-cnn-<kind>-NAME.safetensors, never the shipped model.",
        ),
    ] = None,
) -> None:
    """Train a pattern classifier on annotated maps; write the weights (safetensors) and the JSON card.

    The held-out 20% (stratified) is never used to choose the model (the CNN's checkpoint, the logistic regression's L2
    strength: both on the validation slice); its scores, and the heuristic scorer's on the same maps, go into the card.
    """
    from dataclasses import replace

    from attnpatterns.classifier import card as card_mod
    from attnpatterns.classifier import train as tr

    rec = tr.recipe_named(recipe.value)
    if synthetic is not None and synthetic != rec.synthetic_per_class:
        if synthetic < 0:
            from attnpatterns.errors import UserError

            raise UserError(f"--synthetic must be 0 or positive, got {synthetic}.")
        rec = replace(rec, name=f"{rec.name}+synthetic{synthetic}", synthetic_per_class=synthetic)
    from cli.common import check_threads

    check_threads(threads)
    cfg = tr.TrainConfig(
        kind=kind.value,
        data=str(data),
        seed=seed,
        epochs=epochs,
        patience=patience,
        recipe=rec,
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        threads=threads,
    )
    if out is None:
        out = (
            Path("classifiers") / f"pattern-cnn-{kind.value}-{annotator}.safetensors"
            if annotator
            else card_mod.default_path(kind.value)
        )
    d = tr.load_data(data, kind.value, annotator=annotator)
    tr.check_enough(d)  # before the summary line: bad data is one line on stderr, nothing else
    typer.echo(
        f"{len(d)} annotated {kind.value} maps: " + ", ".join(f"{k} {v}" for k, v in d.counts().items()), err=True
    )
    if compare:
        grid = [r for r in tr.recipe_grid() if r.name != rec.name]
        results = tr.compare(cfg, [rec] + grid, data=d, show_progress=True)
        main = results[0]
    else:
        results = None
        main = tr.train(cfg, data=d, show_progress=True)
    cv_recipes = [r.recipe for r in results] if results else [rec]
    cv = tr.cross_validate(cfg, folds, cv_recipes, data=d, show_progress=True) if folds else None

    extra_metrics: dict = {}
    if results:
        extra_metrics["recipes_same_split"] = {
            r.recipe.name: {
                "recipe": r.recipe.to_dict(),
                "weighted_f1": r.test["weighted_f1"],
                "macro_f1": r.test["macro_f1"],
                "accuracy": r.test["accuracy"],
            }
            for r in results
        }
    if cv:
        extra_metrics["cross_validation"] = cv
    command = _command(
        kind.value,
        data,
        out,
        recipe.value,
        compare,
        folds,
        synthetic,
        seed,
        epochs,
        patience,
        test_fraction,
        val_fraction,
        annotator,
    )
    card = tr.training_card(
        main,
        cfg,
        d,
        labels_from=f"annotator {annotator}" if annotator else "consensus (labels.tsv)",
        command=command,
        data_source=str(data),
        extra_metrics=extra_metrics,
    )
    w, c = card_mod.save(out, main.fit.model, card)
    typer.echo(f"wrote {w} and {c}")
    typer.echo(
        f"held-out ({main.test['n']} maps): classifier weighted F1 {main.test['weighted_f1']:.3f}, macro F1 "
        f"{main.test['macro_f1']:.3f}; heuristic weighted F1 {main.heuristic['weighted_f1']:.3f}, macro F1 "
        f"{main.heuristic['macro_f1']:.3f}"
    )
    if results:
        rows = [[r.recipe.name, r.test["weighted_f1"], r.test["macro_f1"], r.test["accuracy"]] for r in results]
        rows.append(
            ["heuristic scorer", main.heuristic["weighted_f1"], main.heuristic["macro_f1"], main.heuristic["accuracy"]]
        )
        typer.echo(format_rows(rows, ["recipe (same split)", "weighted F1", "macro F1", "accuracy"]))
    if cv:
        rows = [
            [name, v["weighted_f1_mean"], v["weighted_f1_std"], v["macro_f1_mean"]] for name, v in cv["recipes"].items()
        ]
        h = cv["heuristic"]
        rows.append(["heuristic scorer", h["weighted_f1_mean"], h["weighted_f1_std"], h["macro_f1_mean"]])
        typer.echo(format_rows(rows, [f"{folds}-fold CV", "weighted F1", "std", "macro F1"]))


def _command(
    kind,
    data,
    out,
    recipe,
    compare,
    folds,
    synthetic,
    seed,
    epochs,
    patience,
    test_fraction,
    val_fraction,
    annotator=None,
) -> str:
    try:  # a path under the working folder is recorded relative to it, so the card's command runs on any clone
        out = Path(out).resolve().relative_to(Path.cwd())
    except ValueError:
        pass
    parts = [
        "attn",
        "classifier",
        "train",
        "--kind",
        kind,
        "--data",
        str(data),
        "--out",
        str(out),
        "--recipe",
        recipe,
        "--seed",
        str(seed),
        "--epochs",
        str(epochs),
        "--patience",
        str(patience),
    ]
    if annotator:
        parts += ["--annotator", annotator]
    if compare:
        parts.append("--compare")
    if folds:
        parts += ["--folds", str(folds)]
    if synthetic is not None:
        parts += ["--synthetic", str(synthetic)]
    if test_fraction != 0.2:
        parts += ["--test-fraction", str(test_fraction)]
    if val_fraction != 0.15:
        parts += ["--val-fraction", str(val_fraction)]
    return " ".join(parts)


@handle_errors
def evaluate_cmd(
    kind: KindOpt,
    data: DataOpt = Path("annotations"),
    classifier: ClassifierOpt = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            help="Folder for metrics.json, per_class.csv, confusion.csv and confusion.png. Default: "
            "reports/classifier-<kind>/.",
        ),
    ] = None,
    all_maps: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Score every annotated map, not only the held-out ones named in the card (those include training "
            "maps: optimistic).",
        ),
    ] = False,
) -> None:
    """Score a trained classifier on its held-out maps beside the heuristic scorer: weighted and macro F1,
    per-class precision/recall, the confusion matrix (table and PNG)."""
    from attnpatterns.classifier.evaluate import evaluate, per_class_table, write_report

    rep = evaluate(kind.value, data, classifier, all_maps=all_maps)
    out = out or Path("reports") / f"classifier-{kind.value}"
    files = write_report(rep, out)
    which = "all annotated" if all_maps else "held-out"
    typer.echo(f"{rep.n} {which} {kind.value} maps; classifier {rep.classifier}")
    typer.echo(
        format_rows(
            [
                ["classifier", rep.cnn["weighted_f1"], rep.cnn["macro_f1"], rep.cnn["accuracy"]],
                [
                    "heuristic scorer",
                    rep.heuristic["weighted_f1"],
                    rep.heuristic["macro_f1"],
                    rep.heuristic["accuracy"],
                ],
            ],
            ["", "weighted F1", "macro F1", "accuracy"],
        )
    )
    typer.echo("")
    typer.echo(
        format_rows(
            per_class_table(rep.cnn, rep.heuristic),
            ["label", "clf prec", "clf rec", "clf F1", "support", "heur prec", "heur rec", "heur F1"],
        )
    )
    typer.echo("")
    typer.echo("classifier confusion matrix (rows true, columns predicted):")
    typer.echo(_confusion_text(rep.cnn["confusion"]))
    typer.echo(f"\nwrote {', '.join(str(f) for f in files)}")


@handle_errors
def predict_cmd(
    kind: KindOpt,
    files: Annotated[
        List[Path],
        typer.Argument(
            help="Maps saved with np.save (2-D T x T arrays over the real tokens, any float dtype), or .npz archives "
            "written by 'attn maps' (every head's map of every input in them)."
        ),
    ],
    classifier: ClassifierOpt = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Also write the lines to this TSV (file, label, probability).")
    ] = None,
) -> None:
    """Classify maps: one line per map, '<name>\\t<label>\\t<probability>' (name: the .npy file's stem, or
    <archive stem>[:<example id>]:L<layer>H<head> for the maps of an 'attn maps' archive)."""
    from attnpatterns.classifier.predict import predict_files
    from attnpatterns.io import write_text

    preds = predict_files(files, kind.value, classifier)
    lines = [f"{p.name}\t{p.label}\t{p.probability:.4f}" for p in preds]
    if out is not None:
        write_text(out, "file\tlabel\tprobability\n" + "\n".join(lines) + "\n")
    for line in lines:
        typer.echo(line)
