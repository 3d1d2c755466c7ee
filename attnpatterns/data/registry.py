"""The nine GLUE tasks: text fields, labels, metric, dev splits, and the glue_data TSV layout."""

from __future__ import annotations

from dataclasses import dataclass

from attnpatterns.errors import UserError


@dataclass(frozen=True)
class TaskSpec:
    name: str
    text_a: str  # hub column
    text_b: str | None
    num_labels: int  # 1 = regression
    metric: str  # mcc | acc | acc_f1 | pearson_spearman
    main_key: str  # the metric compared against the 0.9 x full threshold
    dev_splits: tuple[str, ...]  # glue_data file stems for dev
    hub_config: str
    hub_dev_splits: tuple[str, ...]
    labels: tuple[str, ...] = ()  # label strings in glue_data order (empty = already integers / float)
    # glue_data TSV: header or not, and the column (name or index) of text_a, text_b, label
    tsv_header: bool = True
    tsv_a: str | int = ""
    tsv_b: str | int | None = None
    tsv_label: str | int = "label"
    tsv_id: str | int | None = None

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @property
    def dev_split(self) -> str:
        return self.dev_splits[0]


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        TaskSpec(
            "CoLA",
            "sentence",
            None,
            2,
            "mcc",
            "mcc",
            ("dev",),
            "cola",
            ("validation",),
            tsv_header=False,
            tsv_a=3,
            tsv_label=1,
        ),
        TaskSpec(
            "SST-2",
            "sentence",
            None,
            2,
            "acc",
            "acc",
            ("dev",),
            "sst2",
            ("validation",),
            tsv_a="sentence",
            tsv_label="label",
        ),
        TaskSpec(
            "MRPC",
            "sentence1",
            "sentence2",
            2,
            "acc_f1",
            "acc",
            ("dev",),
            "mrpc",
            ("validation",),
            tsv_a="#1 String",
            tsv_b="#2 String",
            tsv_label="Quality",
        ),
        TaskSpec(
            "STS-B",
            "sentence1",
            "sentence2",
            1,
            "pearson_spearman",
            "pearson",
            ("dev",),
            "stsb",
            ("validation",),
            tsv_a="sentence1",
            tsv_b="sentence2",
            tsv_label="score",
            tsv_id="index",
        ),
        TaskSpec(
            "QQP",
            "question1",
            "question2",
            2,
            "acc_f1",
            "acc",
            ("dev",),
            "qqp",
            ("validation",),
            tsv_a="question1",
            tsv_b="question2",
            tsv_label="is_duplicate",
            tsv_id="id",
        ),
        TaskSpec(
            "MNLI",
            "premise",
            "hypothesis",
            3,
            "acc",
            "acc",
            ("dev_matched", "dev_mismatched"),
            "mnli",
            ("validation_matched", "validation_mismatched"),
            labels=("contradiction", "entailment", "neutral"),
            tsv_a="sentence1",
            tsv_b="sentence2",
            tsv_label=-1,
            tsv_id="index",
        ),
        TaskSpec(
            "QNLI",
            "question",
            "sentence",
            2,
            "acc",
            "acc",
            ("dev",),
            "qnli",
            ("validation",),
            labels=("entailment", "not_entailment"),
            tsv_a="question",
            tsv_b="sentence",
            tsv_id="index",
        ),
        TaskSpec(
            "RTE",
            "sentence1",
            "sentence2",
            2,
            "acc",
            "acc",
            ("dev",),
            "rte",
            ("validation",),
            labels=("entailment", "not_entailment"),
            tsv_a="sentence1",
            tsv_b="sentence2",
            tsv_id="index",
        ),
        TaskSpec(
            "WNLI",
            "sentence1",
            "sentence2",
            2,
            "acc",
            "acc",
            ("dev",),
            "wnli",
            ("validation",),
            tsv_a="sentence1",
            tsv_b="sentence2",
            tsv_id="index",
        ),
    ]
}

_ALIASES = {k.lower().replace("-", ""): k for k in TASKS} | {"stsb": "STS-B", "sst2": "SST-2"}


def get_task(name: str) -> TaskSpec:
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    if key in _ALIASES:
        return TASKS[_ALIASES[key]]
    raise UserError(f"unknown task '{name}'; use one of {', '.join(TASKS)}.")


def parse_tasks(names: str | list[str]) -> list[TaskSpec]:
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    if not names:
        raise UserError("no task given; pass --tasks with one or more of " + ", ".join(TASKS) + ".")
    return [get_task(n) for n in names]
