"""Training on a tiny synthetic feature cache: checkpoints, and --resume continues exactly."""
import json

import numpy as np
import torch

from lasr_train import train
from lasr_train.tokenizer import train_tokenizer

WORDS = ["alpha", "bravo", "charlie", "delta", "echo"]


def make_cache(root, n=10, seed=0):
    rng = np.random.default_rng(seed)
    d = root / "s1.00"
    d.mkdir(parents=True)
    feats, lines, off = [], [], 0
    for i in range(n):
        T = int(rng.integers(120, 260))
        f = rng.normal(0, 2, size=(T, 80)).astype(np.float16)
        text = " ".join(rng.choice(WORDS, size=3))
        lines.append({"id": f"u{i}", "corpus": "librispeech-toy", "text": text, "speaker": "s", "duration": T / 100,
                      "offset": off, "frames": T})
        feats.append(f)
        off += T
    arr = np.concatenate(feats)
    np.save(d / "shard-0000.npy", arr)
    (d / "shard-0000.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    a = arr.astype(np.float64)
    (root / "stats.json").write_text(json.dumps({"frames": len(a), "sum": a.sum(0).tolist(),
                                                 "sum_sq": (a * a).sum(0).tolist()}))


SET = ["encoder.subsampling_channels=4", "encoder.d_model=16", "encoder.num_blocks=2", "encoder.kernel_size=5",
       "decoder.embed_dim=8", "decoder.hidden=16", "decoder.attention.dim=8", "decoder.attention.filters=4",
       "decoder.attention.radius=3", "training.batch_seconds=6", "training.warmup_steps=5",
       "training.log_every=100", "training.eval_every=0", "training.epochs=3",
       "training.augment.noise_prob=0.5"]


def test_resume_is_exact(tmp_path):
    make_cache(tmp_path / "cache")
    train_tokenizer(WORDS, "characters", 31, tmp_path / "tok")
    common = ["--tokens", str(tmp_path / "tok"), "--train-cache", str(tmp_path / "cache") + ":1",
              "--dev-cache", str(tmp_path / "cache"), "--threads", "1"]
    train.main(common + ["--out", str(tmp_path / "a"), "--max-steps", "9", "--set", *SET])
    train.main(common + ["--out", str(tmp_path / "b"), "--max-steps", "4", "--set", *SET])
    train.main(common + ["--out", str(tmp_path / "b"), "--max-steps", "9", "--resume"])
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 9 and a["epoch"] == b["epoch"] >= 1
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert (tmp_path / "b" / "epoch-001.pt").exists()
    assert (tmp_path / "a" / "best.pt").exists()   # dev WER (LibriSpeech part) evaluated at the epoch end


def test_resume_applies_training_overrides_and_refuses_model_changes(tmp_path):
    import pytest
    make_cache(tmp_path / "cache")
    train_tokenizer(WORDS, "characters", 31, tmp_path / "tok")
    common = ["--tokens", str(tmp_path / "tok"), "--train-cache", str(tmp_path / "cache") + ":1",
              "--threads", "1", "--out", str(tmp_path / "r")]
    train.main(common + ["--max-steps", "3", "--set", *SET])
    with pytest.raises(SystemExit, match="encoder.d_model"):
        train.main(common + ["--max-steps", "5", "--resume", "--set", "encoder.d_model=32"])
    train.main(common + ["--max-steps", "5", "--resume", "--set", "training.lr=0.123",
                         "training.augment.specaugment=false", "encoder.d_model=16"])
    ck = torch.load(tmp_path / "r" / "last.pt", weights_only=False)
    assert ck["step"] == 5 and ck["config"]["training"]["lr"] == 0.123
    assert ck["config"]["training"]["augment"]["specaugment"] is False
    assert ck["config"]["encoder"]["d_model"] == 16
    assert abs(ck["optimizer"]["param_groups"][0]["lr"] - train.lr_at(5, 0.123, 5)) < 1e-9
    log = (tmp_path / "r" / "train.log").read_text()
    assert "lr: 0.001 -> 0.123" in log and "specaugment: True -> False" in log


def test_sigterm_stops_at_a_step_boundary_with_a_checkpoint(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    make_cache(tmp_path / "cache")
    train_tokenizer(WORDS, "characters", 31, tmp_path / "tok")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "lasr_train.train", "--tokens", str(tmp_path / "tok"), "--train-cache",
           str(tmp_path / "cache") + ":1", "--threads", "1", "--out", str(out),
           "--set", *[s for s in SET if not s.startswith("training.epochs")], "training.epochs=100000",
           "training.checkpoint_minutes=1000"]
    env = {"PYTHONPATH": str(Path(train.__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"}
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and "end of epoch 2" not in ((out / "train.log").read_text()
                                                               if (out / "train.log").exists() else ""):
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err.decode()
    log = (out / "train.log").read_text().splitlines()
    assert "stopped by signal SIGTERM" in log[-1]
    ck = torch.load(out / "last.pt", weights_only=False)
    assert f"at step {ck['step']}," in log[-1] and ck["epoch"] >= 2


def test_cooldown_falls_linearly_to_zero_from_the_rate_it_starts_at():
    peak, warmup = 1e-3, 1600
    before = train.lr_at(20000, peak, warmup)
    assert train.lr_at(20000, peak, warmup, 20000, 1000) == before      # untouched up to the start
    assert train.lr_at(19000, peak, warmup, 20000, 1000) == train.lr_at(19000, peak, warmup)
    assert abs(train.lr_at(20500, peak, warmup, 20000, 1000) - before / 2) < 1e-12
    assert abs(train.lr_at(20001, peak, warmup, 20000, 1000) - before * 0.999) < 1e-12
    assert train.lr_at(21000, peak, warmup, 20000, 1000) == 0.0
    assert train.lr_at(25000, peak, warmup, 20000, 1000) == 0.0          # and stays there


def test_a_stop_on_the_last_step_of_an_epoch_still_closes_the_epoch(tmp_path):
    make_cache(tmp_path / "cache")
    train_tokenizer(WORDS, "characters", 31, tmp_path / "tok")
    common = ["--tokens", str(tmp_path / "tok"), "--train-cache", str(tmp_path / "cache") + ":1",
              "--threads", "1"]
    train.main(common + ["--out", str(tmp_path / "one"), "--set", *SET, "training.epochs=1"])
    per_epoch = torch.load(tmp_path / "one" / "last.pt", weights_only=False)["step"]
    train.main(common + ["--out", str(tmp_path / "r"), "--max-steps", str(per_epoch), "--set", *SET])
    ck = torch.load(tmp_path / "r" / "last.pt", weights_only=False)
    assert ck["step"] == per_epoch and ck["epoch"] == 1
    assert (tmp_path / "r" / "epoch-001.pt").exists()
    assert "end of epoch 1" in (tmp_path / "r" / "train.log").read_text()


def exported_toy_model(tmp_path):
    """Train the toy model 6 steps on a toy cache and export it to tmp_path/model; returns the
    train arguments common to runs on that cache, and the trained model (float32)."""
    from lasr_train.export import export_model, load_checkpoint_model
    make_cache(tmp_path / "cache")
    train_tokenizer(WORDS, "characters", 31, tmp_path / "tok")
    common = ["--train-cache", str(tmp_path / "cache") + ":1", "--threads", "1"]
    train.main(common + ["--tokens", str(tmp_path / "tok"), "--out", str(tmp_path / "a"), "--max-steps", "6",
                         "--set", *SET])
    model, cfg, _ = load_checkpoint_model(tmp_path / "a" / "last.pt", tmp_path / "tok")
    export_model(model, cfg, tmp_path / "tok", tmp_path / "model")
    return common, model


def test_a_run_can_start_from_an_exported_model(tmp_path):
    """--init-model: the first step starts from the model directory's weights (lr 0 keeps them),
    its architecture wins over the config, and a mismatched vocabulary or shape is refused."""
    import pytest
    from lasr_train.export import export_model, load_checkpoint_model
    common, model = exported_toy_model(tmp_path)
    exported = {k: v.half().float() for k, v in model.state_dict().items()}

    # No --set of the architecture: it comes from the model's config.yaml, not configs/default.yaml.
    train.main(common + ["--init-model", str(tmp_path / "model"), "--out", str(tmp_path / "b"),
                         "--max-steps", "2", "--set", "training.lr=0", "training.batch_seconds=6"])
    ck = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert ck["step"] == 2 and ck["config"]["encoder"]["d_model"] == 16
    assert ck["init"]["model"] == str(tmp_path / "model") and len(ck["init"]["sha256"]) == 64
    for k, v in exported.items():
        assert torch.equal(ck["model"][k], v), k
    assert "initialized from" in (tmp_path / "b" / "train.log").read_text()
    # The data the start model learned from stays on the card of what this run exports.
    from lasr_train.export import init_synthetic_speech
    assert ck["init"]["its_synthetic_speech"] == [l[2:] for l in (tmp_path / "model" / "MODEL_CARD.md")
                                                  .read_text().splitlines() if l.startswith("- ") and "synthetic speech" in l]
    ck["init"].pop("its_synthetic_speech")        # as in checkpoints written before the field existed
    assert init_synthetic_speech(ck["init"]) == init_synthetic_speech(torch.load(
        tmp_path / "b" / "last.pt", weights_only=False)["init"])
    model_b, cfg_b, _ = load_checkpoint_model(tmp_path / "b" / "last.pt", tmp_path / "tok")
    export_model(model_b, cfg_b, tmp_path / "tok", tmp_path / "model_b",
                 synth_summary={"hours": 1.5, "hours_by_voice": {"piper:joe": 1.5}, "prompts": ["p.txt"]},
                 earlier_synth=init_synthetic_speech(ck["init"]))
    card = (tmp_path / "model_b" / "MODEL_CARD.md").read_text()
    assert "(learned by the model this run started from)" in card and "1.5 h of synthetic speech (piper 1.5 h)" in card

    with pytest.raises(SystemExit, match="encoder.d_model"):
        train.main(common + ["--init-model", str(tmp_path / "model"), "--out", str(tmp_path / "c"),
                             "--max-steps", "1", "--set", "encoder.d_model=32"])
    cfg_text = (tmp_path / "model" / "config.yaml").read_text()
    (tmp_path / "model" / "config.yaml").write_text(cfg_text.replace("hidden: 16", "hidden: 20"))
    with pytest.raises(SystemExit, match=r"(?s)does not fit its config.yaml.*size mismatch for decoder.lstm"):
        train.main(common + ["--init-model", str(tmp_path / "model"), "--out", str(tmp_path / "e"),
                             "--max-steps", "1"])
    (tmp_path / "model" / "config.yaml").write_text(cfg_text)
    (tmp_path / "tok2").mkdir()   # the same characters, two of them swapped
    pieces = (tmp_path / "tok" / "tokens.txt").read_text().splitlines()
    (tmp_path / "tok2" / "tokens.txt").write_text("\n".join(pieces[:5] + [pieces[6], pieces[5]] + pieces[7:]) + "\n")
    with pytest.raises(SystemExit, match="differs from --tokens at id 5"):
        train.main(common + ["--init-model", str(tmp_path / "model"), "--tokens", str(tmp_path / "tok2"),
                             "--out", str(tmp_path / "d"), "--max-steps", "1"])


def test_a_run_may_grow_the_exported_encoder_without_changing_what_it_computes(tmp_path):
    """--init-model with more conv blocks and a wider block MLP: the grown model's outputs
    equal the exported model's before the first update; shrinking is refused."""
    import pytest
    from lasr_train.model import LasrModel, ModelArgs
    common, model = exported_toy_model(tmp_path)

    train.main(common + ["--init-model", str(tmp_path / "model"), "--out", str(tmp_path / "g"),
                         "--max-steps", "1", "--set", "encoder.num_blocks=5", "encoder.ff_mult=3",
                         "training.lr=0", "training.batch_seconds=6"])
    ck = torch.load(tmp_path / "g" / "last.pt", weights_only=False)
    assert ck["config"]["encoder"]["num_blocks"] == 5 and ck["config"]["encoder"]["ff_mult"] == 3
    small = LasrModel(model.args)
    small.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    grown = LasrModel(ModelArgs(**ck["model_args"]))
    grown.load_state_dict(ck["model"])
    assert len(grown.encoder.blocks) == 5 and grown.encoder.blocks[0].ff1.out_features == 3 * 16
    small.eval(), grown.eval()
    torch.manual_seed(1)
    x, lengths = torch.randn(2, 150, 80), torch.tensor([150, 97])
    y, y_len = torch.randint(3, 31, (2, 7)), torch.tensor([7, 4])
    with torch.no_grad():
        enc_s, _ = small.encode(x, lengths)
        enc_g, _ = grown.encode(x, lengths)
        loss_s = small.forward_loss(x, lengths, y, y_len, already_normalized=False)[0]
        loss_g = grown.forward_loss(x, lengths, y, y_len, already_normalized=False)[0]
    assert torch.allclose(enc_s, enc_g, atol=1e-5) and torch.allclose(loss_s, loss_g, atol=1e-5)
    # The added units are not dead: their weights move once the rate is above zero.
    train.main(common + ["--init-model", str(tmp_path / "model"), "--out", str(tmp_path / "h"),
                         "--max-steps", "2", "--set", "encoder.num_blocks=5", "training.batch_seconds=6"])
    moved = torch.load(tmp_path / "h" / "last.pt", weights_only=False)["model"]
    added = [i for i in range(5) if i not in train.grown_block_positions(2, 5)]
    assert added and all(moved[f"encoder.blocks.{i}.ff2.weight"].abs().sum() > 0 for i in added)

    with pytest.raises(SystemExit, match="may only grow"):
        train.main(common + ["--init-model", str(tmp_path / "model"), "--out", str(tmp_path / "s"),
                             "--max-steps", "1", "--set", "encoder.num_blocks=1"])


def test_grown_blocks_keep_the_trained_ones_in_order_first_and_last_in_place():
    assert train.grown_block_positions(10, 10) == list(range(10))
    pos = train.grown_block_positions(10, 16)
    assert pos[0] == 0 and pos[-1] == 15 and pos == sorted(set(pos)) and len(pos) == 10
    assert train.grown_block_positions(2, 5) == [0, 4]



def make_teacher_cache(root, cache, dim=6, seed=1):
    """A teacher cache (lasr_train.teacher's layout) for the utterances of `cache`:
    random states of layers 1 and 2 at the student's frame count."""
    from safetensors.torch import save_file
    from lasr_train.model import subsampled_lengths
    rng = np.random.default_rng(seed)
    lines = [json.loads(l) for l in (cache / "s1.00" / "shard-0000.jsonl").read_text().splitlines()]
    root.mkdir(parents=True)
    tensors = {}
    for d in lines[:-2]:   # two utterances without teacher states: they get no distillation term
        n = int(subsampled_lengths(torch.tensor(d["frames"])))
        for layer in (1, 2):
            tensors[f"{d['id']}/layer{layer}"] = torch.from_numpy(rng.normal(size=(n, dim)).astype(np.float16))
    save_file(tensors, str(root / "states-00000.safetensors"), metadata={"ids": json.dumps([d["id"] for d in lines[:-2]])})
    (root / "meta.json").write_text(json.dumps({"teacher": "toy", "layers": [1, 2], "state_dim": dim}))


def test_distillation_resumes_exactly_and_its_heads_stay_out_of_the_model(tmp_path):
    make_cache(tmp_path / "cache")
    make_teacher_cache(tmp_path / "teacher", tmp_path / "cache")
    train_tokenizer(WORDS, "characters", 31, tmp_path / "tok")
    common = ["--tokens", str(tmp_path / "tok"), "--train-cache", str(tmp_path / "cache") + ":1",
              "--threads", "1", "--teacher-cache", str(tmp_path / "teacher")]
    dset = SET + ["training.distill.weight=0.5", "training.distill.layers=1:1,2:2"]
    train.main(common + ["--out", str(tmp_path / "a"), "--max-steps", "7", "--set", *dset])
    train.main(common + ["--out", str(tmp_path / "b"), "--max-steps", "3", "--set", *dset])
    train.main(common + ["--out", str(tmp_path / "b"), "--max-steps", "7", "--resume"])
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 7
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k in a["distill_heads"]:
        assert torch.equal(a["distill_heads"][k], b["distill_heads"][k]), k
    assert not any("head" in k for k in a["model"])
    log = (tmp_path / "a" / "train.log").read_text()
    assert "8 of 10 training utterances have teacher states" in log
    # A teacher layer the cache does not hold is refused by name.
    import pytest
    with pytest.raises(SystemExit, match="teacher layers \\[3\\]"):
        train.main(common + ["--out", str(tmp_path / "c"), "--max-steps", "1", "--set", *SET,
                             "training.distill.weight=0.5", "training.distill.layers=2:3"])


def test_a_distillation_only_stage_trains_the_encoder_alone(tmp_path):
    """A pre-training stage: no transcribed set, only audio with teacher states. The encoder
    learns the teacher's layers; the decoder and the CTC layer, which no loss reaches, keep
    their initial weights, and the distillation loss falls."""
    import pytest
    make_cache(tmp_path / "cache")
    make_teacher_cache(tmp_path / "teacher", tmp_path / "cache")
    train_tokenizer(WORDS, "characters", 31, tmp_path / "tok")
    dset = [*SET, "training.distill.weight=1", "training.distill.layers=2:2", "training.log_every=1",
            "training.lr=0.003", "training.epochs=100", "training.augment.noise_prob=0", "training.augment.specaugment=false"]
    common = ["--tokens", str(tmp_path / "tok"), "--threads", "1", "--teacher-cache", str(tmp_path / "teacher")]
    train.main(common + ["--distill-cache", str(tmp_path / "cache") + ":4", "--out", str(tmp_path / "a"),
                         "--max-steps", "1", "--set", *dset])
    first = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    train.main(common + ["--distill-cache", str(tmp_path / "cache") + ":4", "--out", str(tmp_path / "a"),
                         "--max-steps", "40", "--resume"])
    last = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    assert last["step"] == 40
    moved = {k for k in last["model"] if not torch.equal(first["model"][k], last["model"][k])}
    assert any(k.startswith("encoder.") for k in moved)
    assert not any(k.startswith(("decoder.", "ctc.")) for k in moved), sorted(moved)
    log = (tmp_path / "a" / "train.log").read_text()
    assert "0 of 0 training utterances have teacher states, and 8 without transcripts" in log
    distilled = [float(l.split(" distill ")[1].split()[0]) for l in log.splitlines() if " distill " in l]
    assert " ctc " not in log and len(distilled) >= 30
    assert np.mean(distilled[-5:]) < np.mean(distilled[:5])
    with pytest.raises(SystemExit, match="nothing to train on"):
        train.main(["--tokens", str(tmp_path / "tok"), "--out", str(tmp_path / "b"), "--set", *SET])


def test_prefetched_batches_train_exactly_as_batches_made_in_place(tmp_path):
    make_cache(tmp_path / "cache")
    make_teacher_cache(tmp_path / "teacher", tmp_path / "cache")
    train_tokenizer(WORDS, "characters", 31, tmp_path / "tok")
    common = ["--tokens", str(tmp_path / "tok"), "--train-cache", str(tmp_path / "cache") + ":1",
              "--threads", "1", "--teacher-cache", str(tmp_path / "teacher"), "--max-steps", "6",
              "--set", *SET, "training.distill.weight=0.5", "training.distill.layers=1:1,2:2",
              "training.augment.reverb_prob=0.5"]
    train.main(common + ["--out", str(tmp_path / "a")])
    train.main(common + ["--out", str(tmp_path / "b"), "--prefetch", "3"])
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_a_fixed_time_run_cools_down_to_its_deadline_and_records_the_cooldown(tmp_path):
    import pytest
    make_cache(tmp_path / "cache", n=40)
    train_tokenizer(WORDS, "characters", 31, tmp_path / "tok")
    common = ["--tokens", str(tmp_path / "tok"), "--train-cache", str(tmp_path / "cache") + ":1", "--threads", "1"]
    sets = [*SET, "training.epochs=1000"]
    # However fast this machine is, the run ends by its deadline, not by its epochs.
    train.main(common + ["--out", str(tmp_path / "a"), "--max-minutes", "0.05", "--cooldown-minutes", "0.02",
                         "--set", *sets])
    ck = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    tc = ck["config"]["training"]
    assert tc["cooldown_start"] is not None and tc["cooldown_steps"] >= 1
    assert tc["cooldown_start"] <= ck["step"] <= tc["cooldown_start"] + tc["cooldown_steps"]
    assert ck["epoch"] < 1000
    log = (tmp_path / "a" / "train.log").read_text()
    assert f"cooldown from step {tc['cooldown_start']} over {tc['cooldown_steps']} steps" in log
    with pytest.raises(SystemExit):
        train.main(common + ["--out", str(tmp_path / "b"), "--cooldown-minutes", "1", "--set", *sets])


def test_restart_from_keeps_weights_and_adam_and_starts_the_schedule_again(tmp_path):
    make_cache(tmp_path / "cache")
    train_tokenizer(WORDS, "characters", 31, tmp_path / "tok")
    common = ["--tokens", str(tmp_path / "tok"), "--train-cache", str(tmp_path / "cache") + ":1", "--threads", "1"]
    # a first leg that ends in a cooldown, as a run with --cooldown-minutes does
    train.main(common + ["--out", str(tmp_path / "a"), "--max-steps", "6", "--set", *SET,
                         "training.cooldown_start=3", "training.cooldown_steps=3"])
    first = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    assert first["step"] == 6
    # its cooldown has run: resuming it trains nothing, however long it may run
    train.main(common + ["--out", str(tmp_path / "a"), "--resume", "--max-steps", "20"])
    assert torch.load(tmp_path / "a" / "last.pt", weights_only=False)["step"] == 6
    assert "its cooldown ended at step 6" in (tmp_path / "a" / "train.log").read_text()
    ck = train.restart_checkpoint(tmp_path / "a" / "last.pt", tmp_path / "probe.pt")
    assert ck["step"] == 0 and ck["best"] is None and ck["config"]["training"]["cooldown_start"] is None
    assert ck["audio_seconds"] == first["audio_seconds"] > 0
    for k in first["model"]:
        assert torch.equal(ck["model"][k], first["model"][k]), k
    assert ck["optimizer"]["state"].keys() == first["optimizer"]["state"].keys()

    train.main(common + ["--out", str(tmp_path / "b"), "--restart-from", str(tmp_path / "a" / "last.pt"),
                         "--max-steps", "2"])
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert b["step"] == 2 and b["restarted_from"]["step"] == 6
    assert b["config"]["training"]["cooldown_start"] is None
    assert any(not torch.equal(b["model"][k], first["model"][k]) for k in first["model"])   # the rate is not zero
    assert "restarted from" in (tmp_path / "b" / "train.log").read_text()
    # once OUT has its own last.pt, --restart-from is a plain resume
    train.main(common + ["--out", str(tmp_path / "b"), "--restart-from", str(tmp_path / "a" / "last.pt"),
                         "--max-steps", "3"])
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=False)["step"] == 3
