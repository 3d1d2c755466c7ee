"""Pruning: importance, s-pruning and m-pruning schedules, mask files (ours and the authors'), survivors."""
from attnpatterns.prune.masks import (  # noqa: F401
    HeadSet,
    and_over_seeds,
    discover_masks,
    load_mask_npy,
    mask_size,
    mask_sizes,
    or_over_seeds,
    read_head_set,
    read_seed_dir,
    stack_seeds,
    survival_counts,
    write_head_set,
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
