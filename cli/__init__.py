"""The ``attn`` command-line app (typer). Each module registers one command group."""
