import pytest
import torch

from siammask_edu import ModelConfig, build_model, count_parameters


def test_parameter_counts():
    assert count_parameters(build_model("sharp")) == 21_482_052
    assert count_parameters(build_model("base")) == 18_816_735


def test_state_dict_entries():
    assert len(build_model("sharp").state_dict()) == 356
    assert len(build_model("base").state_dict()) == 324


@pytest.mark.parametrize("name", ["tiny"])
def test_tiny_geometry(name):
    m = build_model(name)
    with torch.no_grad():
        ex = m.template(torch.rand(1, 3, 127, 127))
        out = m.track(torch.rand(2, 3, 255, 255), ex, mask_head=True)
    assert ex.zf.shape[-2:] == (7, 7)
    assert out.score.shape == (2, 10, 25, 25)
    assert out.delta.shape == (2, 20, 25, 25)
    assert out.mask_logits.shape == (2, 3969, 25, 25)
    assert m.refine_at(out, 3, 4).shape == (2, 1, 127, 127)


def test_paper_preset_17x17():
    m = build_model(ModelConfig.paper().replace(backbone_width=8, backbone_blocks=(1, 1, 1),
                                               feature_channels=16, hidden_channels=16))
    with torch.no_grad():
        ex = m.template(torch.rand(1, 3, 127, 127))
        out = m.track(torch.rand(1, 3, 255, 255), ex)
    assert ex.zf.shape[-2:] == (15, 15)
    assert out.score.shape[-2:] == (17, 17)
    assert out.mask_logits.shape == (1, 3969, 17, 17)


def test_two_branch():
    m = build_model(ModelConfig.two_branch().replace(backbone_width=8, backbone_blocks=(1, 1, 1),
                                                    feature_channels=16, hidden_channels=16))
    with torch.no_grad():
        ex = m.template(torch.rand(1, 3, 127, 127))
        out = m.track(torch.rand(1, 3, 255, 255), ex)
    assert out.score.shape == (1, 1, 25, 25)
    assert out.delta is None
    assert out.mask_logits.shape == (1, 3969, 25, 25)
    assert m.box_head is None and set(ex.kernels) == {"score", "mask"}


def test_two_branch_full_size_counts():
    m = build_model("two_branch")
    assert m.score_head.head[3].out_channels == 1
    assert m.refine is None


def test_sharp_skips_dense_mask_head_by_default():
    m = build_model("tiny")
    with torch.no_grad():
        out = m.track(torch.rand(1, 3, 255, 255), m.template(torch.rand(1, 3, 127, 127)))
    assert out.mask_logits is None


def test_exemplar_broadcast_equals_repeat():
    m = build_model("tiny")
    with torch.no_grad():
        ex = m.template(torch.rand(1, 3, 127, 127) * 255)
        x = torch.rand(3, 3, 255, 255) * 255
        a = m.track(x, ex).score
        b = torch.cat([m.track(x[i:i + 1], ex).score for i in range(3)])
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)


def test_training_forward():
    m = build_model("tiny").train()
    out = m(torch.rand(2, 3, 127, 127), torch.rand(2, 3, 143, 143), refine_all=True)
    assert out["score"].shape == (2, 10, 3, 3)
    assert out["refine_logits"].shape == (18, 1, 127, 127)
    loss = out["refine_logits"].mean() + out["score"].mean() + out["delta"].mean()
    loss.backward()
    assert m.refine.deconv.weight.grad is not None


def test_bad_inputs():
    m = build_model("tiny")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        m.template(torch.rand(3, 127, 127))
    with pytest.raises(ValueError, match="float"):
        m.template(torch.zeros(1, 3, 127, 127, dtype=torch.uint8))
    with pytest.raises(ValueError, match="must be a torch.Tensor"):
        m.template([[1.0]])
    with pytest.raises(ValueError, match="preset"):
        build_model("huge")
    base = build_model(ModelConfig.base().replace(backbone_width=8, backbone_blocks=(1, 1, 1),
                                                  feature_channels=16, hidden_channels=16))
    with torch.no_grad():
        out = base.track(torch.rand(1, 3, 255, 255), base.template(torch.rand(1, 3, 127, 127)))
    with pytest.raises(ValueError, match="no refinement"):
        base.refine_at(out, 0, 0)


def test_mask_at_checks_the_row():
    m = build_model("tiny")
    with torch.no_grad():
        out = m.track(torch.rand(1, 3, 255, 255), m.template(torch.rand(1, 3, 127, 127)))
        assert m.mask_at(out, 24, 0).shape == (1, 1, 63, 63)
    for r, c in [(-1, 0), (0, 25), (25, 3)]:
        with pytest.raises(ValueError, match="outside"):
            m.mask_at(out, r, c)
