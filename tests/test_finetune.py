"""Fine-tuning: determinism, skip-when-done, run-folder checks, fixed masks, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from pruning_helpers import make_glue, make_model_dir

from attnpatterns.errors import UserError


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("ft")
    return make_model_dir(root / "tiny", tokenizer), make_glue(root / "glue")


def _cfg(setup, **kw):
    from attnpatterns.finetune import FinetuneConfig

    model_dir, glue = setup
    base = dict(task="RTE", seed=7, model=str(model_dir), epochs=1, batch_size=8, data_dir=str(glue), lr=1e-3)
    base.update(kw)
    return FinetuneConfig(**base)


def _weights(run_dir):
    from safetensors.torch import load_file

    return load_file(str(run_dir / "model.safetensors"))


def test_same_seed_same_result_and_skip_when_done(setup, tmp_path):
    from attnpatterns.finetune import finetune, load_finetuned

    r1 = finetune(_cfg(setup), tmp_path / "a", show_progress=False)
    r2 = finetune(_cfg(setup), tmp_path / "b", show_progress=False)
    assert not r1.skipped and not r2.skipped
    assert r1.metrics == r2.metrics
    w1, w2 = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)
    # training moved the weights away from the pre-trained ones
    from safetensors.torch import load_file

    pre = load_file(str(setup[0] / "model.safetensors"))
    enc_key = next(k for k in w1 if k.endswith("encoder.layer.0.attention.self.query.weight"))
    pre_key = next(k for k in pre if k.endswith("encoder.layer.0.attention.self.query.weight"))
    assert not torch.equal(w1[enc_key], pre[pre_key])

    mtime = (tmp_path / "a" / "metrics.json").stat().st_mtime_ns
    r3 = finetune(_cfg(setup), tmp_path / "a", show_progress=False)
    assert r3.skipped and r3.metrics == r1.metrics
    assert (tmp_path / "a" / "metrics.json").stat().st_mtime_ns == mtime
    rec = json.loads((tmp_path / "a" / "run.json").read_text())
    assert rec["config"]["seed"] == 7 and rec["provenance"]["attnpatterns"]
    model, tok, rec2 = load_finetuned(tmp_path / "a")
    assert rec2["metrics"]["score"] == r1.score and not model.training


def test_other_config_in_folder_is_an_error(setup, tmp_path):
    from attnpatterns.finetune import finetune, load_finetuned

    finetune(_cfg(setup), tmp_path / "r", show_progress=False)
    with pytest.raises(UserError, match=r"run\.json.*another model/config.*config\.lr"):
        finetune(_cfg(setup, lr=5e-4), tmp_path / "r", show_progress=False)
    (tmp_path / "half").mkdir()
    with pytest.raises(UserError, match="not finished"):
        load_finetuned(tmp_path / "half")


def test_masked_weights_stay_zero_and_gates_hold(setup, tmp_path):
    from attnpatterns.finetune import finetune
    from attnpatterns.models import load_model
    from attnpatterns.prune.magnitude import prunable_parameters

    model, _ = load_model(str(setup[0]), num_labels=2)
    g = torch.Generator().manual_seed(0)
    masks = {n: torch.rand(p.shape, generator=g) > 0.5 for n, p in prunable_parameters(model).items()}
    head_mask = torch.ones(2, 4)
    head_mask[0, 1] = 0
    finetune(_cfg(setup), tmp_path / "m", weight_masks=masks, head_mask=head_mask, show_progress=False)
    w = _weights(tmp_path / "m")
    pre = dict(model.named_parameters())
    for n, m in masks.items():
        assert torch.all(w[n][~m] == 0), n
        assert not torch.equal(w[n][m], pre[n].detach()[m]), n  # the kept ones were trained
    rec = json.loads((tmp_path / "m" / "run.json").read_text())
    assert rec["masked"]["heads_kept"] == 7 and rec["masks"]["weight_masks"]

    with pytest.raises(UserError, match=r"head mask has shape \(3, 4\)"):
        finetune(_cfg(setup), tmp_path / "bad", head_mask=torch.ones(3, 4), show_progress=False)
    bad = {next(iter(masks)): torch.ones(5, dtype=torch.bool)}
    with pytest.raises(UserError, match="has shape"):
        finetune(_cfg(setup), tmp_path / "bad2", weight_masks=bad, show_progress=False)


def test_cli_finetune_and_prune(setup, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    model_dir, glue = setup
    run = tmp_path / "run"
    r = CliRunner().invoke(
        app,
        [
            "finetune",
            "--task",
            "RTE",
            "--seeds",
            "3",
            "--model",
            str(model_dir),
            "--epochs",
            "1",
            "--out",
            str(run),
            "--data-dir",
            str(glue),
            "--max-train-examples",
            "16",
        ],
    )
    assert r.exit_code == 0, r.output
    assert (run / "RTE" / "seed_3" / "finetuned" / "metrics.json").is_file()
    rec = json.loads((run / "RTE" / "seed_3" / "finetuned" / "run.json").read_text())
    assert rec["data"]["train_examples"] == 16
    r = CliRunner().invoke(
        app,
        [
            "finetune",
            "--task",
            "RTE",
            "--seeds",
            "3",
            "--model",
            str(model_dir),
            "--epochs",
            "1",
            "--out",
            str(run),
            "--data-dir",
            str(glue),
            "--max-train-examples",
            "16",
        ],
    )
    assert r.exit_code == 0 and "skipped" in r.output
    r = CliRunner().invoke(
        app,
        [
            "finetune",
            "--task",
            "RTE",
            "--seeds",
            "3",
            "--epochs",
            "1",
            "--out",
            str(run),
            "--data-dir",
            str(glue),
            "--max-train-examples",
            "16",
        ],
    )
    assert r.exit_code == 2 and "another model/config" in r.output
    for method in ("structured", "magnitude"):
        r = CliRunner().invoke(
            app,
            [
                "prune",
                method,
                "--task",
                "RTE",
                "--seeds",
                "3",
                "--run",
                str(run),
                "--data-dir",
                str(glue),
                "--max-dev-examples",
                "12",
            ],
        )
        assert r.exit_code == 0, r.output
        assert (run / "RTE" / "seed_3" / method / "summary.json").is_file()
    r = CliRunner().invoke(
        app, ["prune", "structured", "--task", "RTE", "--seeds", "3,4", "--run", str(run), "--data-dir", str(glue)]
    )
    assert r.exit_code == 2 and "seed_4" in r.output and "attn finetune" in r.output


def test_an_interrupted_run_resumes_to_the_uninterrupted_result(setup, tmp_path, monkeypatch, caplog):
    """Stopped after two of six steps, a rerun of the same config continues from the checkpoint and ends with the
    weights, metrics and losses of a run that was never stopped; the checkpoint goes when the run is done. An
    unreadable checkpoint is set aside: the run starts over and still ends the same."""
    import attnpatterns.finetune as ft

    cfg = _cfg(setup, checkpoint_minutes=0)  # a checkpoint after every step
    whole = ft.finetune(cfg, tmp_path / "whole", show_progress=False)
    assert not (tmp_path / "whole" / ft.CHECKPOINT).exists()

    real = ft.collate
    calls = {"n": 0}

    def stop_at_third(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(ft, "collate", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        ft.finetune(cfg, tmp_path / "cut", show_progress=False)
    monkeypatch.setattr(ft, "collate", real)
    ck = torch.load(tmp_path / "cut" / ft.CHECKPOINT, weights_only=True)
    assert ck["step"] == 2 and len(ck["losses"]) == 2
    assert not (tmp_path / "cut" / "metrics.json").exists()

    with caplog.at_level("INFO", logger="attnpatterns"):
        resumed = ft.finetune(cfg, tmp_path / "cut", show_progress=False)
    assert "resuming at step 2 of 6" in caplog.text
    assert not resumed.skipped and resumed.metrics == whole.metrics
    w1, w2 = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    m1, m2 = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("whole", "cut"))
    assert m1["final_train_loss"] == m2["final_train_loss"] and m1["steps"] == m2["steps"]
    assert not (tmp_path / "cut" / ft.CHECKPOINT).exists()

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / ft.CHECKPOINT).write_bytes(b"not a checkpoint")
    ft.finetune(cfg, bad, show_progress=False)
    assert "unreadable" in caplog.text
    w3 = _weights(bad)
    assert all(torch.equal(w1[k], w3[k]) for k in w1)


def test_a_second_process_on_the_same_folder_waits_for_the_first(setup, tmp_path, monkeypatch, caplog):
    """Two fine-tunings into one folder never train side by side: the second waits while a live process holds the
    folder's lock, writes nothing meanwhile, and then finds the run the first finished (skipped, not redone)."""
    import shutil
    import threading

    from attnpatterns import finetune as ft
    from attnpatterns.sweep.lease import LeaseLock

    monkeypatch.setattr(ft, "WAIT_S", 0.05)
    done = ft.finetune(_cfg(setup), tmp_path / "finished", show_progress=False)
    out = tmp_path / "run"
    holder = LeaseLock(out / ft.LOCK)  # this process: alive, on this host
    assert holder.acquire()
    results: list = []
    second = threading.Thread(target=lambda: results.append(ft.finetune(_cfg(setup), out, show_progress=False)))
    with caplog.at_level("WARNING", logger="attnpatterns"):
        second.start()
        second.join(1.0)
        assert second.is_alive() and not results  # waiting
        assert sorted(p.name for p in out.iterdir()) == [ft.LOCK]  # and nothing written beside the lock
        for f in (tmp_path / "finished").iterdir():  # the holder finishes the run
            shutil.copy2(f, out / f.name)
        holder.release()
        second.join(60)
    assert not second.is_alive()
    assert results[0].skipped and results[0].metrics == done.metrics
    assert "another process" in caplog.text and "waiting" in caplog.text
    assert not (out / ft.LOCK).exists()


def test_a_lock_left_by_a_killed_fine_tuning_does_not_block(setup, tmp_path, dead_pid):
    from attnpatterns import finetune as ft
    from attnpatterns.sweep.lease import LeaseLock

    out = tmp_path / "run"
    assert LeaseLock(out / ft.LOCK, pid=dead_pid, renew=False).acquire()  # its holder was killed
    r = ft.finetune(_cfg(setup), out, show_progress=False)
    assert not r.skipped and (out / "metrics.json").is_file() and not (out / ft.LOCK).exists()
    # killed after the run's last write, before letting go: the rerun finds it done and drops the dead lock
    assert LeaseLock(out / ft.LOCK, pid=dead_pid, renew=False).acquire()
    assert ft.finetune(_cfg(setup), out, show_progress=False).skipped and not (out / ft.LOCK).exists()
    alive = LeaseLock(out / ft.LOCK, renew=False)  # a live holder's lock stays
    assert alive.acquire()
    assert ft.finetune(_cfg(setup), out, show_progress=False).skipped and (out / ft.LOCK).exists()
    alive.release()


def test_masked_mlps_skipped_train_bitwise_as_scaled_by_zero(setup, tmp_path, monkeypatch):
    """Fine-tuning under an MLP mask skips the masked MLPs; the metrics and every weight are those of the
    reference that computes them and scales them by 0 (dropout draws, gradient clipping, the optimiser alike)."""
    import attnpatterns.gates as gates
    from attnpatterns.finetune import finetune

    mlp_mask = torch.tensor([0.0, 1.0])
    head_mask = torch.ones(2, 4)
    head_mask[1, 2] = 0
    runs = {}
    for skip in (False, True):
        monkeypatch.setattr(gates, "SKIP_MASKED_MLPS", skip)
        d = tmp_path / f"skip{int(skip)}"
        runs[skip] = finetune(_cfg(setup), d, head_mask=head_mask, mlp_mask=mlp_mask, show_progress=False)
    assert runs[True].metrics == runs[False].metrics
    w0, w1 = _weights(tmp_path / "skip0"), _weights(tmp_path / "skip1")
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
