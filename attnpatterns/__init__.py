"""attnpatterns: are the heads that pruning keeps the ones with interpretable attention patterns?

Light on import: heavy modules (torch, transformers) load only when a submodule needs them.
"""

__version__ = "0.1.0"

from attnpatterns.errors import UserError  # noqa: F401
