import numpy as np
import pytest
import torch

from lasr_train.decode import CTCPrefixScorer, attention_greedy, beam_search
from lasr_train.model import LasrModel, ModelArgs, subsampled_lengths


def tiny(att="location", **kw):
    torch.manual_seed(0)
    a = ModelArgs(vocab_size=20, subsampling_channels=4, d_model=16, num_blocks=2, kernel_size=5, ff_mult=2,
                  dropout=0.0, embed_dim=8, hidden=12, attention_type=att, attention_dim=8, location_filters=3,
                  location_radius=2, **kw)
    m = LasrModel(a)
    with torch.no_grad():
        m.normalizer.mean.uniform_(-1, 1)
        m.normalizer.std.uniform_(0.5, 2)
    return m.eval()


def test_subsampled_lengths():
    T = torch.tensor([1, 2, 3, 4, 5, 7, 8, 9, 100, 101])
    expect = [int(np.ceil(np.ceil(t / 2) / 2)) for t in T.tolist()]
    assert subsampled_lengths(T).tolist() == expect


def padded_batch(lengths, scale=1.0):
    """Random features of these lengths, and the batch of them padded with garbage that
    must not leak into any utterance's frames."""
    feats = [torch.randn(L, 80) * scale for L in lengths]
    x = torch.full((len(lengths), max(lengths), 80), 55.0)
    for i, f in enumerate(feats):
        x[i, : len(f)] = f
    return feats, x


@pytest.mark.parametrize("att", ["location", "dot"])
def test_shapes_and_batch_equals_single(att):
    m = tiny(att)
    lengths = [37, 50, 23]
    feats, x = padded_batch(lengths, scale=3.0)
    with torch.no_grad():
        enc, enc_len = m.encode(x, torch.tensor(lengths))
        assert enc.shape == (3, 13, 16) and enc_len.tolist() == [10, 13, 6]
        _, att_b, lp_b = attention_greedy(m, enc, enc_len, 1.0, return_trace=4)
        for i, f in enumerate(feats):
            e1, l1 = m.encode(f[None], torch.tensor([len(f)]))
            assert torch.allclose(e1[0], enc[i, : l1[0]], atol=1e-5)
            _, att_1, lp_1 = attention_greedy(m, e1, l1, 1.0, return_trace=4)
            assert torch.allclose(att_1[0], att_b[i, :, : l1[0]], atol=1e-5)
            assert float(att_b[i, :, l1[0]:].abs().sum()) == 0.0
            assert torch.allclose(lp_1[0], lp_b[i], atol=1e-5)
        assert torch.allclose(att_b.sum(-1), torch.ones(3, 4), atol=1e-5)
        assert lp_b.shape == (3, 4, 20)


@pytest.mark.parametrize("att", ["location", "dot"])
def test_teacher_forced_forward_equals_steps(att):
    # forward hoists the embedding and output projection out of the loop; it must
    # stay the same function as the step the decoders (and the Swift engine) run
    m = tiny(att)
    with torch.no_grad():
        enc, enc_len = m.encode(torch.randn(2, 50, 80), torch.tensor([50, 31]))
        ys = torch.tensor([[1, 4, 9, 2, 0], [1, 7, 3, 0, 0]])
        logits = m.decoder(enc, enc_len, ys)
        state = m.decoder.init_state(enc, enc_len)
        for i in range(ys.shape[1]):
            step_logits, state = m.decoder.step(ys[:, i], state, enc)
            assert torch.allclose(step_logits, logits[:, i], atol=1e-5)


def test_decoder_dropout_trains_only_and_keeps_the_weights():
    # It adds no parameters (the exported file and the engine are unchanged) and acts
    # only in training: evaluated, the model is the one without it.
    plain, dropped = tiny(), tiny(decoder_dropout=0.3)
    assert plain.state_dict().keys() == dropped.state_dict().keys()
    dropped.load_state_dict(plain.state_dict())
    enc, enc_len = plain.encode(torch.randn(2, 50, 80), torch.tensor([50, 31]))
    ys = torch.tensor([[1, 4, 9, 2, 0], [1, 7, 3, 0, 0]])
    with torch.no_grad():
        assert torch.equal(plain.decoder(enc, enc_len, ys), dropped.decoder(enc, enc_len, ys))
        dropped.train()
        torch.manual_seed(1)
        a = dropped.decoder(enc, enc_len, ys)
        assert not torch.allclose(a, plain.decoder(enc, enc_len, ys), atol=1e-3)
        torch.manual_seed(1)
        assert torch.equal(a, dropped.decoder(enc, enc_len, ys))   # seeded, so a resumed run repeats it


@pytest.mark.parametrize("att", ["location", "dot"])
def test_losses_finite_and_backward(att):
    m = tiny(att).train()
    x = torch.randn(2, 60, 80)
    lengths = torch.tensor([60, 41])
    y = torch.tensor([[3, 4, 5, 6], [7, 8, -1, -1]])
    yl = torch.tensor([4, 2])
    loss, ctc, ce, n = m.forward_loss(x, lengths, y, yl, 0.3, 0.1, already_normalized=False)
    assert n == 6 and all(torch.isfinite(t) for t in (loss, ctc, ce))
    loss.backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in m.parameters())
    assert m.decoder.out.weight.grad.abs().sum() > 0 and m.ctc.weight.grad.abs().sum() > 0


def test_ctc_only_loss_skips_the_decoder():
    m = tiny("location").train()
    x, lengths = torch.randn(2, 60, 80), torch.tensor([60, 41])
    y, yl = torch.tensor([[3, 4, 5, 6], [7, 8, -1, -1]]), torch.tensor([4, 2])
    loss, ctc, att, n = m.forward_loss(x, lengths, y, yl, 1.0, 0.1, already_normalized=False)
    _, ctc_joint, _, _ = m.forward_loss(x, lengths, y, yl, 0.3, 0.1, already_normalized=False)
    assert att is None and torch.equal(loss, ctc) and torch.allclose(ctc, ctc_joint)
    loss.backward()
    assert all(p.grad is None for p in m.decoder.parameters())
    assert m.ctc.weight.grad.abs().sum() > 0 and m.encoder.blocks[0].ff1.weight.grad.abs().sum() > 0


def test_ctc_prefix_scorer_matches_ctc_loss():
    torch.manual_seed(1)
    lp = torch.log_softmax(torch.randn(9, 6), -1)
    sc = CTCPrefixScorer(lp.numpy())
    st = sc.initial()
    last = 1
    for c in [3, 3, 4]:
        psi, r_n, r_b = sc.extend(st, last, np.array([c]))
        st, last = (r_n[:, 0], r_b[:, 0], psi[0]), c
    full = sc.final(st)
    ref = -torch.nn.functional.ctc_loss(lp[:, None], torch.tensor([[3, 3, 4]]), torch.tensor([9]),
                                        torch.tensor([3]), reduction="sum")
    assert abs(full - float(ref)) < 1e-4


def test_beam_search_runs():
    m = tiny()
    with torch.no_grad():
        enc, el = m.encode(torch.randn(1, 80, 80), torch.tensor([80]))
        lp = torch.log_softmax(m.ctc(enc), -1)
        nb = beam_search(m, enc[0], lp[0], beam=4, ctc_weight=0.3, max_len_ratio=0.5, eos_threshold=1.5)
    assert 1 <= len(nb) <= 4
    assert all(nb[i]["score"] >= nb[i + 1]["score"] for i in range(len(nb) - 1))
    assert all(len(h["tokens"]) <= 10 for h in nb)


def hybrid(layers=2, **kw):
    torch.manual_seed(0)
    a = ModelArgs(vocab_size=20, d_model=16, dropout=0.0, embed_dim=8, hidden=12, attention_dim=8,
                  location_filters=3, location_radius=2, encoder_type="whisper", whisper_state=32,
                  whisper_heads=2, whisper_layers=layers, whisper_ff=128, whisper_ctx=60, **kw)
    return LasrModel(a).eval()


def test_whisper_layers_encoder_batch_equals_single():
    m = hybrid()
    lengths = [37, 50, 23]
    feats, x = padded_batch(lengths)
    with torch.no_grad():
        enc, enc_len = m.encode(x, torch.tensor(lengths))
        assert enc.shape == (3, 13, 16) and enc_len.tolist() == subsampled_lengths(torch.tensor(lengths)).tolist()
        for i, f in enumerate(feats):
            single, n = m.encode(f[None], torch.tensor([len(f)]))
            assert n.item() == enc_len[i]
            torch.testing.assert_close(single[0], enc[i, : n.item()], atol=2e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="positions"):
        m.encode(torch.zeros(1, 250, 80), torch.tensor([250]))


def test_whisper_layers_encoder_is_the_teachers_at_40ms(tmp_path):
    """With a teacher's weights (whisper_layers_weights), the encoder computes the teacher's
    front end, averages frame pairs, adds every second position and runs the teacher's blocks."""
    import torch.nn.functional as F
    from lasr_train.teacher import Teacher, make_random_teacher, whisper_layers_weights

    t = Teacher(make_random_teacher(tmp_path / "t", state=32, layers=2, heads=2))
    m = hybrid(layers=2)
    w = whisper_layers_weights(t, 2, 60)
    missing = set(m.state_dict()) - set(w)
    assert all(k.startswith(("decoder.", "ctc.", "normalizer.", "encoder.proj.")) for k in missing)
    m.load_state_dict({**m.state_dict(), **w})
    mel = torch.randn(1, 42, 80)
    e = t.encoder
    with torch.no_grad():
        h = F.gelu(e.conv2(F.gelu(e.conv1(mel.transpose(1, 2))))).transpose(1, 2)    # (1, 21, d)
        h = torch.cat([h, torch.zeros(1, 1, 32)], 1)
        h = 0.5 * (h[:, 0::2] + h[:, 1::2]) + e.positional_embedding[0:22:2]
        for blk in e.blocks:
            h = blk(h)
        want = m.encoder.proj(e.ln_post(h))
        got, n = m.encoder(mel, torch.tensor([42]))
    assert n.item() == 11
    torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="encoder layers"):
        whisper_layers_weights(t, 3, 60)


def test_an_unknown_encoder_type_is_refused():
    cfg = {"features": {"n_mels": 80}, "encoder": {"type": "conformer", "d_model": 16},
           "decoder": {"embed_dim": 8, "hidden": 12, "attention": {"type": "dot", "dim": 8}}}
    with pytest.raises(ValueError, match="conformer"):
        ModelArgs.from_config(cfg, 20)
