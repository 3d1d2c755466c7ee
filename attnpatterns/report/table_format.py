"""The results table laid out: score and size frames, and the Markdown, CSV and LaTeX files (``attn table``, the
report). The cells come from :mod:`attnpatterns.report.tables`."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from attnpatterns.report.tables import METHOD_LABELS, SETTINGS, SUBNETS, Table, metric_key, row_keys, row_label


def fmt(mean, std, digits: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def cell(cells, key, task):
    if cells is None or cells.empty:
        return None
    m = cells[
        (cells["method"] == key[0])
        & (cells["subnet"] == key[1])
        & (cells["setting"] == key[2])
        & (cells["task"] == task)
    ]
    return None if m.empty else m.iloc[0]


def score_frame(table: Table, digits: int = 3):
    """Wide DataFrame: index = row labels, columns = tasks, cells 'mean ± std' (n/a where missing)."""
    import pandas as pd

    data = {}
    for key in row_keys(_has_full_retrained(table)):
        row = {}
        for task in table.tasks:
            c = cell(table.cells, key, task)
            if c is None:
                row[task] = "n/a"
            else:
                n = int(c["n"])
                single = n <= 1  # no spread to show
                row[task] = fmt(float(c["mean"]), None if single else float(c["std"]), digits)
                if key[0] != "majority baseline" and n < _max_n(table, task):
                    row[task] += f" (n={n})"
        data[row_label(key)] = row
    return pd.DataFrame.from_dict(data, orient="index", columns=table.tasks)


def _has_full_retrained(table: Table) -> bool:
    c = table.cells
    return bool(not c.empty and ((c["method"] == "full model") & (c["setting"] == "retrained")).any())


def _max_n(table: Table, task: str) -> int:
    t = table.cells[table.cells["task"] == task]
    return int(t["n"].max()) if not t.empty else 0


def size_frame(table: Table):
    """Wide DataFrame of subnetwork sizes: kept fraction of the prunable weights (and heads/MLPs kept)."""
    import pandas as pd

    data = {}
    for m in METHOD_LABELS:
        for s in SUBNETS:
            row = {}
            for task in table.tasks:
                c = None
                for st in SETTINGS:
                    c = cell(table.cells, (m, s, st), task)
                    if (
                        c is not None
                        and "kept_fraction" in c
                        and c["kept_fraction"] is not None
                        and not pd.isna(c["kept_fraction"])
                    ):
                        break
                    c = None
                if c is None:
                    row[task] = "n/a"
                    continue
                txt = f"{float(c['kept_fraction']):.3f}"
                if "heads_kept" in c and not pd.isna(c.get("heads_kept")):
                    txt += (
                        f" ({float(c['heads_kept']):.1f}/{int(c['heads_total'])} h, "
                        f"{float(c['mlps_kept']):.1f}/{int(c['mlps_total'])} m)"
                    )
                row[task] = txt
            data[f"{METHOD_LABELS[m]} {s}"] = row
    return pd.DataFrame.from_dict(data, orient="index", columns=table.tasks)


def _markdown(df, first: str) -> str:
    cols = [first] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + ["---:"] * len(df.columns)) + "|"]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [str(v) for v in row.tolist()]) + " |")
    return "\n".join(lines)


def score_caption(table: Table) -> str:
    """What the score cells are: the metric per task, mean ± std over how many seeds, and the source."""
    n = {t: _max_n(table, t) for t in table.tasks}
    ns = ", ".join(f"{t} {n[t]}" for t in table.tasks)
    return (
        f"Dev scores ({', '.join(f'{t} {metric_key(t)}' for t in table.tasks)}), mean ± population std over seeds "
        f"(seeds per task: {ns}; a cell with fewer says n=). Source: {table.source}."
    )


def to_markdown(table: Table, digits: int = 3) -> str:
    scores = score_frame(table, digits)
    sizes = size_frame(table)
    out = (
        [
            score_caption(table),
            "",
            _markdown(scores, "setting"),
            "",
        ]
        + [f"Note: {n}" for n in table.notes]
        + ([""] if table.notes else [])
        + [
            "Subnetwork sizes: fraction of the prunable encoder weights kept (Q, K, V, attention output, MLP dense "
            "weights and biases, except the MLP output bias), mean over seeds; s-pruning and super sets also as kept "
            "heads (h) and MLPs (m).",
            "",
            _markdown(sizes, "subnetwork"),
        ]
    )
    return "\n".join(out) + "\n"


def to_csv(table: Table) -> str:
    """The wide layout with mean, std, n and kept fraction per task as separate columns."""
    import pandas as pd

    recs = []
    for key in row_keys(_has_full_retrained(table)):
        r: dict[str, Any] = {"setting": row_label(key), "method": key[0], "subnet": key[1], "eval": key[2]}
        for task in table.tasks:
            c = cell(table.cells, key, task)
            r[f"{task}_mean"] = None if c is None else float(c["mean"])
            r[f"{task}_std"] = None if c is None else float(c["std"])
            r[f"{task}_n"] = None if c is None else int(c["n"])
            kf = (
                None
                if c is None or "kept_fraction" not in c or pd.isna(c["kept_fraction"])
                else float(c["kept_fraction"])
            )
            r[f"{task}_kept_fraction"] = kf
        recs.append(r)
    return pd.DataFrame(recs).to_csv(index=False)


def to_latex(table: Table, digits: int = 3) -> str:
    df = score_frame(table, digits).map(lambda s: s.replace("±", r"$\pm$"))
    df.index.name = "setting"
    return df.style.to_latex(hrules=True, column_format="l" + "r" * len(df.columns))


def write_tables(table: Table, out_dir: str | os.PathLike, stem: str = "table", digits: int = 3) -> list[Path]:
    from attnpatterns.io import write_text

    out_dir = Path(out_dir)
    paths = [
        write_text(out_dir / f"{stem}.md", to_markdown(table, digits)),
        write_text(out_dir / f"{stem}.csv", to_csv(table)),
        write_text(out_dir / f"{stem}.tex", to_latex(table, digits)),
    ]
    return paths
