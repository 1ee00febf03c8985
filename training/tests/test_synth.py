"""Synthetic speech: the voice draw, and one rendering by each engine the Makefile installs."""
import random

import pytest
import soundfile as sf

from lasr_train import synth

PROMPT = "The invention of movable metal letters may justly be considered as the invention of printing."


def test_mix_weights_are_normalized_and_bad_mixes_are_refused():
    assert synth.parse_mix("espeak:3,flite:1") == {"espeak": 0.75, "flite": 0.25}
    assert synth.parse_mix("piper") == {"piper": 1.0}
    assert synth.parse_mix("espeak:1,festival:0") == {"espeak": 1.0}
    for bad, says in [("espeak:1,mbrola:1", "unknown engine 'mbrola'"), ("flite:x", "must be a number"),
                      ("flite:0", "no engine"), ("flite:-1", "negative")]:
        with pytest.raises(SystemExit, match=says):
            synth.parse_mix(bad)


def test_default_mix_draws_the_voices_of_the_set_models_default_was_trained_on():
    # The first five voices of /work/lasr-runs/synth/manifest.jsonl (seed 1234), rendered
    # before festival and piper joined the recipe: adding engines must not reshuffle them.
    mix = synth.parse_mix(synth.DEFAULT_MIX)
    voices = {"espeak": synth.ESPEAK_ACCENTS, "flite": synth.FLITE_WANTED}
    rng = random.Random(1234)
    assert [synth.pick_voice(rng, voices, mix) for _ in range(5)] == [
        {"engine": "espeak", "voice": "en-us-nyc+m2", "rate": 130, "pitch": 30},
        {"engine": "espeak", "voice": "en-us+f4", "rate": 140, "pitch": 31},
        {"engine": "espeak", "voice": "en-029+m1", "rate": 133, "pitch": 75},
        {"engine": "flite", "voice": "slt", "stretch": 1.066, "f0": 118},
        {"engine": "flite", "voice": "kal16", "stretch": 1.146, "f0": 208},
    ]


def test_every_engine_is_drawn_near_its_share():
    mix = synth.parse_mix("espeak:2,flite:1,festival:1,piper:0")
    voices = {"espeak": synth.ESPEAK_ACCENTS, "flite": ["slt"], "festival": ["kal_diphone"]}
    rng = random.Random(7)
    engines = [synth.pick_voice(rng, voices, mix)["engine"] for _ in range(4000)]
    assert engines.count("piper") == 0
    assert abs(engines.count("espeak") / 4000 - 0.5) < 0.03
    assert abs(engines.count("festival") / 4000 - 0.25) < 0.03


def render(tmp_path, voice, name):
    out = tmp_path / f"{name}.flac"
    res = synth.render({"voice": voice, "text": PROMPT, "out": str(out), "seed": 1})
    assert res is not None, f"{voice} rendered nothing"
    x, sr = sf.read(out)
    assert sr == 16000 and x.ndim == 1 and abs(len(x) / sr - res["duration"]) < 1e-3
    return res["duration"]


@pytest.mark.parametrize("engine", ["espeak", "flite", "festival", "piper"])
def test_each_engine_renders_speech_whose_length_follows_its_rate(tmp_path, engine):
    mix = {engine: 1.0}
    voices = synth.available_voices(mix, synth.default_piper_model())
    v = synth.pick_voice(random.Random(3), voices, mix)
    slow, fast = dict(v), dict(v)
    if engine == "espeak":
        slow["rate"], fast["rate"] = 130, 210
    elif engine == "piper":
        slow["length_scale"], fast["length_scale"] = 1.2, 0.85
    else:
        slow["stretch"], fast["stretch"] = 1.2, 0.85
    d_slow, d_fast = render(tmp_path, slow, "slow"), render(tmp_path, fast, "fast")
    # 15 words: a few seconds at any of these rates, plus up to 0.8 s of added silence.
    assert 3.0 < d_fast < d_slow < 12.0, (d_fast, d_slow)


def test_all_festival_voices_render_at_the_rate_asked(tmp_path):
    voices = synth.festival_voices()
    assert voices == synth.FESTIVAL_WANTED, "make install-deps installs all three festival voices"
    for name in voices:
        v = {"engine": "festival", "voice": name}
        if name.endswith("_diphone"):
            v["f0"] = 120
        d_slow = render(tmp_path, {**v, "stretch": 1.2}, name + "-slow")
        d_fast = render(tmp_path, {**v, "stretch": 0.85}, name + "-fast")
        assert d_fast < d_slow - 0.3, (name, d_fast, d_slow)


def test_a_missing_engine_is_an_error_that_says_how_to_install_it():
    with pytest.raises(SystemExit, match="pip install piper-tts"):
        synth.available_voices({"piper": 1.0}, "/nonexistent/voice.onnx")


def test_an_interrupted_rendering_resumes_where_it_stopped(tmp_path):
    import json
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(["The first short sentence here.", "A second one follows it.",
                                  "Then comes the third.", "And a fourth ends the list."]) + "\n")
    args = ["--text", str(prompts), "--jobs", "1", "--mix", "espeak:1,flite:1"]
    synth.main(args + ["--out", str(tmp_path / "whole")])
    whole = (tmp_path / "whole" / "manifest.jsonl").read_text().splitlines()
    assert len(whole) == 4
    # Interrupted after two utterances, the second line cut short.
    part = tmp_path / "part"
    synth.main(args + ["--out", str(part)])
    (part / "manifest.jsonl").unlink()
    (part / "summary.json").unlink()
    (part / "manifest.jsonl.partial").write_text(whole[0] + "\n" + whole[1][:20])
    first = part / json.loads(whole[0])["audio"]
    rendered_at = first.stat().st_mtime_ns
    synth.main(args + ["--out", str(part)])
    assert first.stat().st_mtime_ns == rendered_at      # kept, not rendered again
    resumed = (part / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in resumed] == [json.loads(x) for x in whole]
    assert json.loads((part / "summary.json").read_text())["utterances"] == 4
    # Another prompt list in the same folder is refused rather than mixed in.
    (part / "manifest.jsonl").rename(part / "manifest.jsonl.partial")
    prompts.write_text("Something else entirely.\n")
    with pytest.raises(SystemExit, match="other prompts"):
        synth.main(args + ["--out", str(part)])
    assert (part / "manifest.jsonl.partial").exists()


def test_a_skipped_rendering_continues_an_earlier_limited_one(tmp_path):
    import json
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(["The first short sentence here.", "A second one follows it.",
                                  "Then comes the third.", "And a fourth ends the list."]) + "\n")
    args = ["--text", str(prompts), "--jobs", "1", "--mix", "espeak:1,flite:1", "--seed", "5"]
    synth.main(args + ["--out", str(tmp_path / "whole")])
    synth.main(args + ["--out", str(tmp_path / "head"), "--limit", "1"])
    synth.main(args + ["--out", str(tmp_path / "tail"), "--skip", "1", "--limit", "2"])
    read = lambda d: [json.loads(x) for x in (tmp_path / d / "manifest.jsonl").read_text().splitlines()]
    whole, head, tail = read("whole"), read("head"), read("tail")
    # Same ids, texts and voices as the whole set's prompts 0 and 1-2: the two sets are one prefix.
    assert head == whole[:1]
    assert tail == whole[1:3]
    assert json.loads((tmp_path / "tail" / "summary.json").read_text())["prompt_range"] == [1, 3]
    with pytest.raises(SystemExit, match="leaves none of the 4 prompts"):
        synth.main(args + ["--out", str(tmp_path / "none"), "--skip", "4"])
