"""Pruning: importance, s-pruning and m-pruning schedules, mask files (ours and the authors'), survivors."""

from attnpatterns.prune.head_set import HeadSet, read_head_set, write_head_set  # noqa: F401
from attnpatterns.prune.importance import (  # noqa: F401
    Importance,
    compute_importance,
    normalize_head_importance,
    normalize_mlp_importance,
)
from attnpatterns.prune.magnitude import (  # noqa: F401
    MPruneConfig,
    global_magnitude_masks,
    kept_target,
    m_prune,
    magnitude_step,
    prunable_parameters,
    read_weight_masks,
)
from attnpatterns.prune.mask_algebra import (  # noqa: F401
    and_over_seeds,
    mask_size,
    mask_sizes,
    or_over_seeds,
    stack_seeds,
    survival_counts,
)
from attnpatterns.prune.masks import discover_masks, load_mask_npy, read_seed_dir  # noqa: F401
from attnpatterns.prune.structured import (  # noqa: F401
    Evaluation,
    SPruneConfig,
    mask_least_important,
    prune_schedule,
    s_prune,
)
from attnpatterns.prune.survivors import (  # noqa: F401
    SurvivorSplit,
    TaskSurvivors,
    in_between,
    never_kept,
    split_survivors,
    super_survivors,
    survivors_from_dir,
)
