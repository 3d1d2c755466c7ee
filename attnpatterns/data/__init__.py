"""GLUE registry, loaders (glue_data folder, hub, own CSV/TSV/JSONL) and metrics."""

from attnpatterns.data.loaders import Example, load_file, load_task, resolve_data_dir  # noqa: F401
from attnpatterns.data.metrics import compute_metrics, main_metric  # noqa: F401
from attnpatterns.data.registry import TASKS, TaskSpec, get_task  # noqa: F401
