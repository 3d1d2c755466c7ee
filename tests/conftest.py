"""Shared fixtures: tiny random BERTs built from a config (no downloads), the packaged MiniLM, GLUE paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GLUE = SHARED / "glue"
AUTHORS = SHARED / "reference" / "bert-experiments"

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub in tests: an unknown id fails at once instead of retrying


@pytest.fixture(scope="session")
def tiny_model():
    """A tiny random BERT (2 layers x 4 heads, hidden 32) without a task head."""
    from attnpatterns.models import tiny_bert

    return tiny_bert(seed=0)


@pytest.fixture(scope="session")
def tiny_classifier():
    """A tiny random BERT with a 2-class head."""
    from attnpatterns.models import tiny_bert

    return tiny_bert(num_labels=2, seed=0)


@pytest.fixture(scope="session")
def tokenizer():
    """The packaged MiniLM's tokenizer (uncased WordPiece); fits the tiny models' vocabulary."""
    from attnpatterns.models import load_tokenizer

    return load_tokenizer(None)


@pytest.fixture(scope="session")
def minilm():
    """(model, tokenizer) of the packaged pretrained MiniLM."""
    from attnpatterns.models import load_model

    return load_model(None)


@pytest.fixture
def glue_dir():
    if not GLUE.is_dir():
        pytest.skip(f"no GLUE data at {GLUE}")
    return GLUE


@pytest.fixture
def authors_dir():
    if not AUTHORS.is_dir():
        pytest.skip(f"no authors' reference data at {AUTHORS}")
    return AUTHORS


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model, tokenizer):
    """The tiny random BERT saved as a model folder (what --model takes)."""
    d = tmp_path_factory.mktemp("tiny-bert")
    tiny_model.save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def labelstudio(tmp_path_factory):
    """A real Label Studio on a free 127.0.0.1 port with a fresh database: (server, credentials).

    Creates Label Studio's own venv under the cache when missing (minutes on a fresh machine); skips only
    when that install is impossible (no package index)."""
    from attnpatterns.annotate import server as srv
    from attnpatterns.errors import UserError

    try:
        srv.ensure_venv()
    except UserError as e:
        pytest.skip(f"cannot install Label Studio: {e}")
    server, creds = srv.start_throwaway(tmp_path_factory.mktemp("labelstudio"))
    yield server, creds
    server.stop()


def pytest_terminal_summary(terminalreporter):
    """Repeat the counts the reliability tests print (kill points, bad-input cases, property examples) at the end of
    every run, also without -s (they come from the tests' captured stdout)."""
    import re

    pattern = re.compile(r"^(kill points:|bad-input cases:|determinism:|.+: \d+ examples tried)")
    lines = []
    for rep in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        if getattr(rep, "when", "call") != "call":
            continue
        for name, text in getattr(rep, "sections", []):
            if "stdout" in name:
                lines += [line for line in text.splitlines() if pattern.search(line)]
    if lines:
        terminalreporter.section("reliability counts")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def dead_pid() -> int:
    """The PID of a process of this host that has ended (and been reaped): a lock holder that was killed."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid
