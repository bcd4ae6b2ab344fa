"""LinkNet (Chaurasia & Culurciello 2017) on a ResNet-18/34 encoder in plain torch: the shipped
road model's network, built without segmentation-models-pytorch.

Why: importing smp imports timm, torchvision and, through torchvision's detection ops,
``torch._dynamo``: ~1.8 s and ~200 MB of resident memory on the 2-core machine and 4.6 s on a
GPU host, before the first window of every imagery diff (issue 17). The modules here carry the
names smp gives them (``encoder.layer1.0.conv1``, ``decoder.blocks.0.block.1.0``,
``segmentation_head.0``), so an osmgap checkpoint loads into either; ``tests/model/test_linknet.py``
checks that both give the same logits. Other architectures and the 1D decoder still come from smp.
"""
from __future__ import annotations

import torch
from torch import nn

# residual blocks per stage of the ResNet encoders built here
ENCODER_BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
STAGE_CHANNELS = (64, 128, 256, 512)
PREFINAL_CHANNELS = 32


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (He et al. 2016), projected where the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + shortcut)


def _stage(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
    return nn.Sequential(*(BasicBlock(cin if k == 0 else cout, cout, stride if k == 0 else 1) for k in range(blocks)))


class ResNetEncoder(nn.Module):
    """The ResNet stem and four stages; returns the features LinkNet's decoder joins, finest first
    (after the stem at 1/2, then each stage at 1/4 to 1/32)."""

    def __init__(self, in_channels: int, blocks: tuple[int, ...]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _stage(64, STAGE_CHANNELS[0], blocks[0], stride=1)
        self.layer2 = _stage(STAGE_CHANNELS[0], STAGE_CHANNELS[1], blocks[1], stride=2)
        self.layer3 = _stage(STAGE_CHANNELS[1], STAGE_CHANNELS[2], blocks[2], stride=2)
        self.layer4 = _stage(STAGE_CHANNELS[2], STAGE_CHANNELS[3], blocks[3], stride=2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        stem = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(stem))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        return [stem, f1, f2, f3, self.layer4(f3)]


def _conv_norm_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    """LinkNet's decoder block: 1x1 down to a quarter of the channels, x2 transposed convolution,
    1x1 up to the next stage's channels; the encoder's feature of that scale is then added."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin // 4
        self.block = nn.Sequential(
            _conv_norm_relu(cin, mid),
            nn.Sequential(nn.ConvTranspose2d(mid, mid, 4, 2, 1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True)),
            _conv_norm_relu(mid, cout),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = self.block(x)
        return x if skip is None else x + skip


class LinknetDecoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        channels = (*STAGE_CHANNELS[::-1], STAGE_CHANNELS[0], PREFINAL_CHANNELS)  # 512 256 128 64 64 32
        self.blocks = nn.ModuleList(DecoderBlock(a, b) for a, b in zip(channels, channels[1:]))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        deepest, *skips = features[::-1]
        x = deepest
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
        return x


class Linknet(nn.Module):
    """The road net: image (N, C, H, W), H and W multiples of 32, to road logits (N, 1, H, W)."""

    def __init__(self, encoder: str = "resnet18", in_channels: int = 3) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(in_channels, ENCODER_BLOCKS[encoder])
        self.decoder = LinknetDecoder()
        self.segmentation_head = nn.Sequential(nn.Conv2d(PREFINAL_CHANNELS, 1, 1))
        self._initialise()

    def _initialise(self) -> None:
        """He initialisation for the ReLU layers, Glorot for the head (random: nothing pretrained)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        head = self.segmentation_head[0]
        assert isinstance(head, nn.Conv2d)
        nn.init.xavier_uniform_(head.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise RuntimeError(f"Linknet needs an input whose sides are multiples of 32, got {tuple(x.shape[-2:])}")
        return self.segmentation_head(self.decoder(self.encoder(x)))


def builds(arch: str, encoder: str, decoder: str) -> bool:
    """Whether this module builds that network (else smp does)."""
    return arch.lower() == "linknet" and encoder in ENCODER_BLOCKS and decoder == "plain"
