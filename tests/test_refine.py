import pytest
import torch
import torch.nn.functional as F

from siammask_edu import build_model
from siammask_edu.models import Refine


@pytest.fixture(scope="module")
def tiny():
    return build_model("tiny")


def test_window_geometry_centre():
    # Appendix A: at RoW (12, 12) the windows are p0[32:93], p1[16:47], p2[8:23] (unpadded)
    ref = Refine((2, 3, 4), 8)
    feats = [torch.arange(s * s, dtype=torch.float32).reshape(1, 1, s, s).repeat(1, c, 1, 1)
             for s, c in [(125, 2), (63, 3), (31, 4)]]
    q0, q1, q2 = ref.windows_at(feats, 12, 12)
    assert torch.equal(q0, feats[0][:, :, 32:93, 32:93])
    assert torch.equal(q1, feats[1][:, :, 16:47, 16:47])
    assert torch.equal(q2, feats[2][:, :, 8:23, 8:23])


def test_windows_at_edges_are_zero_padded():
    ref = Refine((1, 1, 1), 8)
    feats = [torch.ones(1, 1, s, s) for s in (125, 63, 31)]
    q0, q1, q2 = ref.windows_at(feats, 0, 24)
    assert q0.shape[-2:] == (61, 61) and q1.shape[-2:] == (31, 31) and q2.shape[-2:] == (15, 15)
    # RoW (0, 24) covers search pixels [-32, 95) x [160, 287): 32 px outside on top and right
    assert q0[0, 0, :16].sum() == 0 and q0[0, 0, 16:, :45].min() == 1
    assert q0[0, 0, :, 45:].sum() == 0
    assert q2[0, 0, :4].sum() == 0 and q2[0, 0, 4:, :11].min() == 1


def test_test_path_shapes(tiny):
    with torch.no_grad():
        ex = tiny.template(torch.rand(1, 3, 127, 127) * 255)
        out = tiny.track(torch.rand(1, 3, 255, 255) * 255, ex)
        for r, c in [(0, 0), (24, 24), (0, 24), (12, 5)]:
            assert tiny.refine_at(out, r, c).shape == (1, 1, 127, 127)
    with pytest.raises(ValueError, match="outside"):
        tiny.refine_at(out, 25, 0)


def test_training_path_equals_test_path_without_padding():
    """forward_all on a 143 search = the test-time decoder on unpadded windows per RoW.

    In float64, so that batched-vs-single convolution rounding cannot hide a wrong window.
    """
    tiny = build_model("tiny").double()
    ref = tiny.refine
    with torch.no_grad():
        ex = tiny.template(torch.rand(2, 3, 127, 127, dtype=torch.float64) * 255)
        out = tiny.track(torch.rand(2, 3, 143, 143, dtype=torch.float64) * 255, ex)
        assert out.mask_corr.shape[-2:] == (3, 3)
        assert [f.shape[-1] for f in out.features] == [69, 35, 17, 17]
        allrows = ref.forward_all(out.features, out.mask_corr)
        assert allrows.shape == (2 * 9, 1, 127, 127)
        for b in range(2):
            for r in range(3):
                for c in range(3):
                    q = [f[b:b + 1, :, s * r:s * r + w, s * c:s * c + w]
                         for f, w, s in zip(out.features, ref.windows, ref.steps)]
                    vec = out.mask_corr[b:b + 1, :, r:r + 1, c:c + 1]
                    one = ref._decode(vec, *q)
                    torch.testing.assert_close(allrows[b * 9 + r * 3 + c:b * 9 + r * 3 + c + 1],
                                               one, atol=1e-9, rtol=1e-9)


def test_training_path_refuses_255_search(tiny):
    with torch.no_grad():
        ex = tiny.template(torch.rand(1, 3, 127, 127))
        out = tiny.track(torch.rand(1, 3, 255, 255), ex)
    with pytest.raises(ValueError, match="143"):
        tiny.refine.forward_all(out.features, out.mask_corr)


def test_upsampling_is_nearest():
    # the released F.upsample default: nearest; a constant-per-pixel input stays blocky
    x = torch.arange(4.0).reshape(1, 1, 2, 2)
    up = F.interpolate(x, size=(3, 3), mode="nearest")
    assert torch.equal(up[0, 0], torch.tensor([[0.0, 0, 1], [0, 0, 1], [2, 2, 3]]))
