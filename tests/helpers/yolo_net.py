"""A YOLOv8n face network (1 class, 5 keypoints) built in plain torch, for tests.

No face checkpoint may be committed and ultralytics needs a torchvision that does not import beside
the CPU torch here, so the tests build the network themselves: the YOLOv8 "n" scale (width 0.25,
depth 0.33) of the backbone (strided convolutions, C2f blocks, SPPF), the FPN/PAN neck and the
decoupled detect head with a keypoint branch, initialised deterministically (synthetic weights).
:func:`export_onnx` writes it with the signature of an ultralytics pose export
(``images`` ``(1, 3, 640, 640)`` -> ``output0`` ``(1, 20, 8400)``, metadata ``names`` and
``kpt_shape``), so the YOLO plugin's ONNX engine runs a real network graph on real photos.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.extras import need

torch = need("torch")
nn = torch.nn

REG_MAX = 16  # box sides are distributions over 16 bins (distribution focal loss)
STRIDES = (8, 16, 32)
KEYPOINTS = 5
#: the synthetic class logits' spread (the signal is small after 70 untrained layers)
CLASS_GAIN = 20.0


class Conv(nn.Module):
    """Convolution, batch norm, SiLU ("same" padding)."""

    def __init__(self, c_in: int, c_out: int, k: int = 1, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3)
        self.act = nn.SiLU()

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """Two 3×3 convolutions, with a residual connection when ``shortcut``."""

    def __init__(self, c: int, shortcut: bool) -> None:
        super().__init__()
        self.cv1, self.cv2 = Conv(c, c, 3), Conv(c, c, 3)
        self.add = shortcut

    def forward(self, x):  # type: ignore[no-untyped-def]
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """Split the channels in two, run ``n`` bottlenecks on one half keeping every output, fuse all."""

    def __init__(self, c_in: int, c_out: int, n: int, shortcut: bool) -> None:
        super().__init__()
        self.c = c_out // 2
        self.cv1 = Conv(c_in, 2 * self.c)
        self.cv2 = Conv((2 + n) * self.c, c_out)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x):  # type: ignore[no-untyped-def]
        parts = list(self.cv1(x).chunk(2, dim=1))
        for block in self.m:
            parts.append(block(parts[-1]))
        return self.cv2(torch.cat(parts, dim=1))


class SPPF(nn.Module):
    """Three chained 5×5 max-pools (receptive fields 5, 9, 13) concatenated with their input."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        hidden = c_in // 2
        self.cv1, self.cv2 = Conv(c_in, hidden), Conv(hidden * 4, c_out)
        self.pool = nn.MaxPool2d(5, 1, 2)

    def forward(self, x):  # type: ignore[no-untyped-def]
        feats = [self.cv1(x)]
        for _ in range(3):
            feats.append(self.pool(feats[-1]))
        return self.cv2(torch.cat(feats, dim=1))


def _branch(c_in: int, hidden: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(Conv(c_in, hidden, 3), Conv(hidden, hidden, 3), nn.Conv2d(hidden, c_out, 1))


class PoseHead(nn.Module):
    """Per level: box-side distributions, class logits, keypoint offsets; decoded to input pixels."""

    def __init__(self, channels: tuple[int, ...], classes: int = 1, keypoints: int = KEYPOINTS) -> None:
        super().__init__()
        self.classes, self.keypoints = classes, keypoints
        c_box, c_cls, c_kpt = max(16, channels[0] // 4, 4 * REG_MAX), max(channels[0], classes), max(
            channels[0] // 4, 3 * keypoints)
        self.box = nn.ModuleList(_branch(c, c_box, 4 * REG_MAX) for c in channels)
        self.cls = nn.ModuleList(_branch(c, c_cls, classes) for c in channels)
        self.kpt = nn.ModuleList(_branch(c, c_kpt, 3 * keypoints) for c in channels)

    def forward(self, feats):  # type: ignore[no-untyped-def]
        boxes, logits, kpts, centres, strides = [], [], [], [], []
        for i, (x, stride) in enumerate(zip(feats, STRIDES)):
            b, _, h, w = x.shape
            boxes.append(self.box[i](x).flatten(2))
            logits.append(self.cls[i](x).flatten(2))
            kpts.append(self.kpt[i](x).flatten(2))
            ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
            centres.append(torch.stack([xs.flatten(), ys.flatten()]) + 0.5)  # cell centres, in cells
            strides.append(torch.full((1, h * w), float(stride), dtype=x.dtype))
        box, logit, kpt = torch.cat(boxes, 2), torch.cat(logits, 2), torch.cat(kpts, 2)
        centre, stride = torch.cat(centres, 1), torch.cat(strides, 1)
        n = box.shape[-1]
        # each side's distance = expectation of a softmax over 16 bins
        bins = torch.arange(REG_MAX, dtype=box.dtype).view(1, 1, REG_MAX, 1)
        dist = (box.view(b, 4, REG_MAX, n).softmax(2) * bins).sum(2)
        near, far = dist[:, :2], dist[:, 2:]  # left/top, right/bottom
        xy = (centre + (far - near) / 2) * stride
        wh = (near + far) * stride
        kp = kpt.view(b, self.keypoints, 3, n)
        kx = (kp[:, :, 0] * 2 + centre[0] - 0.5) * stride
        ky = (kp[:, :, 1] * 2 + centre[1] - 0.5) * stride
        kv = kp[:, :, 2].sigmoid()
        kp = torch.stack([kx, ky, kv], dim=2).view(b, 3 * self.keypoints, n)
        return torch.cat([xy, wh, logit.sigmoid(), kp], 1)


class YoloV8nFace(nn.Module):
    """YOLOv8n-pose with one class ("face") and five keypoints."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(Conv(3, 16, 3, 2), Conv(16, 32, 3, 2), C2f(32, 32, 1, True))  # P2/4
        self.p3 = nn.Sequential(Conv(32, 64, 3, 2), C2f(64, 64, 2, True))
        self.p4 = nn.Sequential(Conv(64, 128, 3, 2), C2f(128, 128, 2, True))
        self.p5 = nn.Sequential(Conv(128, 256, 3, 2), C2f(256, 256, 1, True), SPPF(256, 256))
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.top_down4 = C2f(256 + 128, 128, 1, False)
        self.top_down3 = C2f(128 + 64, 64, 1, False)
        self.down3, self.bottom_up4 = Conv(64, 64, 3, 2), C2f(64 + 128, 128, 1, False)
        self.down4, self.bottom_up5 = Conv(128, 128, 3, 2), C2f(128 + 256, 256, 1, False)
        self.head = PoseHead((64, 128, 256))

    def forward(self, x):  # type: ignore[no-untyped-def]
        p3 = self.p3(self.stem(x))
        p4 = self.p4(p3)
        p5 = self.p5(p4)
        n4 = self.top_down4(torch.cat([self.up(p5), p4], 1))
        n3 = self.top_down3(torch.cat([self.up(n4), p3], 1))
        m4 = self.bottom_up4(torch.cat([self.down3(n3), n4], 1))
        m5 = self.bottom_up5(torch.cat([self.down4(m4), p5], 1))
        return self.head([n3, m4, m5])


def build(seed: int = 0) -> "YoloV8nFace":
    """The network with deterministic synthetic weights, in inference mode.

    He-normal convolutions from ``seed`` (torch's default initialisation shrinks the signal through
    the 70 layers until every box scores the same); the class logits are spread (weights times
    :data:`CLASS_GAIN`) around a bias of -3 so that, as in a trained detector, most of the 8400
    candidates score low and some score high, depending on the image.
    """
    torch.manual_seed(seed)
    net = YoloV8nFace()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        for branch in net.head.cls:
            branch[-1].weight.mul_(CLASS_GAIN)
            branch[-1].bias.fill_(-3.0)
    return net.eval()


def export_onnx(net: "YoloV8nFace", path: Path, size: int = 640) -> Path:
    """Write ``net`` as an ONNX file shaped like ultralytics' pose export of a face model."""
    onnx = need("onnx")
    with torch.no_grad():
        torch.onnx.export(net, (torch.zeros(1, 3, size, size),), str(path), input_names=["images"],
                          output_names=["output0"], opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    for key, value in {"task": "pose", "names": "{0: 'face'}", "kpt_shape": f"[{KEYPOINTS}, 3]",
                       "imgsz": f"[{size}, {size}]", "stride": "32"}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path
