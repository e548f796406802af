from pathlib import Path

import pytest
import torch

from siammask_edu.models import AdjustLayer, ResNetBackbone, load_torchvision_weights

TV_KEYS = Path(__file__).parent / "data" / "torchvision_resnet50_keys.txt"


def _read_tv_keys():
    out = {}
    for line in TV_KEYS.read_text().splitlines():
        if line.startswith("#"):
            continue
        name, shape = line.split(" ", 1)
        out[name] = tuple(int(v) for v in shape.strip("()").split(",") if v.strip())
    return out


@pytest.fixture(scope="module")
def released():
    return ResNetBackbone().eval()


@pytest.mark.parametrize("size, expect", [(127, (61, 31, 15, 15)), (255, (125, 63, 31, 31)),
                                          (143, (69, 35, 17, 17))])
def test_released_shapes(released, size, expect):
    with torch.no_grad():
        feats = released(torch.zeros(1, 3, size, size))
    assert [f.shape[-1] for f in feats] == list(expect)
    assert [f.shape[1] for f in feats] == [64, 256, 512, 1024]


def test_released_layer_details(released):
    assert released.conv1.padding == (0, 0)
    assert released.layer2[0].conv2.stride == (2, 2) and released.layer2[0].conv2.padding == (0, 0)
    ds2 = released.layer2[0].downsample[0]
    assert ds2.kernel_size == (3, 3) and ds2.stride == (2, 2) and ds2.padding == (0, 0)
    ds3 = released.layer3[0].downsample[0]
    assert ds3.kernel_size == (3, 3) and ds3.stride == (1, 1) and ds3.padding == (1, 1)
    assert released.layer3[0].conv2.dilation == (1, 1)
    for blk in released.layer3[1:]:
        assert blk.conv2.dilation == (2, 2) and blk.conv2.padding == (2, 2)
    assert not hasattr(released, "layer4")


def test_torchvision_layout_matches_torchvision_keys():
    """The torchvision layout has exactly torchvision's resnet50 keys and shapes (no fc)."""
    tv = _read_tv_keys()
    ours = {k: tuple(v.shape) for k, v in ResNetBackbone(layout="torchvision").state_dict().items()}
    expected = {k: s for k, s in tv.items() if not k.startswith("fc.")}
    assert ours == expected


def test_torchvision_layout_stride_32():
    with torch.no_grad():
        feats = ResNetBackbone(layout="torchvision").eval()(torch.zeros(1, 3, 224, 224))
    assert [f.shape[-1] for f in feats] == [112, 56, 28, 14, 7]


def test_torchvision_weights_load_except_two_downsamples(released):
    """ImageNet weights in torchvision's layout fit every layer but the two 3x3 downsamples."""
    tv_shapes = _read_tv_keys()
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.randn(s, generator=gen) if s else torch.tensor(0)
             for k, s in tv_shapes.items()}
    target = ResNetBackbone()
    report = load_torchvision_weights(target, state)
    bad = sorted(m.split(":")[0] for m in report["shape_mismatch"])
    assert bad == ["layer2.0.downsample.0.weight", "layer3.0.downsample.0.weight"]
    assert report["missing"] == []
    assert all(k.startswith(("layer4.", "fc.")) for k in report["unused"])
    assert len(report["loaded"]) == len(target.state_dict()) - 2
    torch.testing.assert_close(target.layer3[5].conv2.weight, state["layer3.5.conv2.weight"])
    assert "(512, 256, 3, 3)" in " ".join(report["shape_mismatch"])


def test_adjust_layer_crop():
    adj = AdjustLayer(1024, 256, crop=4).eval()
    with torch.no_grad():
        assert adj(torch.zeros(1, 1024, 15, 15)).shape == (1, 256, 7, 7)
        assert adj(torch.zeros(1, 1024, 17, 17)).shape == (1, 256, 9, 9)
        assert adj(torch.zeros(1, 1024, 31, 31)).shape == (1, 256, 31, 31)
        assert AdjustLayer(crop=0).eval()(torch.zeros(1, 1024, 15, 15)).shape == (1, 256, 15, 15)
    # no ReLU: negative outputs survive
    adj.bn.bias.data.fill_(-1.0)
    with torch.no_grad():
        assert adj(torch.zeros(1, 1024, 31, 31)).min() < 0


def test_bad_input(released):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        released(torch.zeros(1, 1, 127, 127))
    with pytest.raises(ValueError, match="layout"):
        ResNetBackbone(layout="resnet")
