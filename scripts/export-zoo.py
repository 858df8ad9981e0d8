#!/usr/bin/env python3
"""Exports PyTorch models to ONNX the way PI users do, with onnxruntime reference logits.

Needs torch, torchvision, onnx, onnxruntime (not needed by the tests, which use the committed
files). One-time setup, outside the repository:

    python3 -m venv /work/venv-ops
    /work/venv-ops/bin/pip install torch torchvision onnx onnxruntime onnxscript

Commands:

    # the small test models committed under tests/assets/zoo (a few hundred KiB in all)
    /work/venv-ops/bin/python scripts/export-zoo.py tests --out tests/assets/zoo
    # torchvision's classifiers at 64x64 for the figures (not committed; ~2 GB)
    /work/venv-ops/bin/python scripts/export-zoo.py torchvision --out out/zoo --size 64
    # the PI literature's CIFAR models (ResNet-18/32/56, VGG-16) at 32x32
    /work/venv-ops/bin/python scripts/export-zoo.py cifar --out out/zoo

Weights are random (seeded; no pretrained weights are downloaded). Before export every
BatchNorm's running statistics are re-estimated on random inputs (train-mode forward passes with
cumulative averaging), so activations are normalised as in a trained network. Each model NAME
gets NAME.onnx, NAME.input.npy (N calibration/test inputs, [N, 3, H, W] float32),
NAME.sample.npy (the first of them, [1, 3, H, W], for pi-client) and NAME.logits.npy
(onnxruntime's logits for them, [N, classes]).
"""

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 0


def calibrate_bn(model, shape, batches=4, batch=8):
    """Re-estimates BatchNorm running statistics on random normal inputs."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn((batch,) + shape, generator=g))
    model.eval()


def export(model, name, out, shape, samples=4, exporter="torchscript", opset=17, external=False,
           output_names=None):
    """Writes NAME.onnx, NAME.input.npy and NAME.logits.npy (onnxruntime on the inputs)."""
    import onnx
    import onnxruntime as ort

    model.eval()
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, name + ".onnx")
    x = torch.randn((1,) + shape, generator=torch.Generator().manual_seed(SEED + 2))
    kwargs = dict(input_names=["input"], opset_version=opset)
    if output_names:
        kwargs["output_names"] = output_names
    if exporter == "dynamo":
        torch.onnx.export(model, (x,), path, dynamo=True, **kwargs)
    else:
        torch.onnx.export(model, (x,), path, dynamo=False, do_constant_folding=True, **kwargs)
    if external:
        m = onnx.load(path)
        data = name + ".onnx.data"
        onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data, size_threshold=0)
    g = torch.Generator().manual_seed(SEED + 3)
    xs = torch.randn((samples,) + shape, generator=g).numpy().astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    first_out = sess.get_outputs()[0].name
    logits = np.concatenate([
        sess.run([first_out], {sess.get_inputs()[0].name: xs[i:i + 1]})[0].reshape(1, -1)
        for i in range(samples)
    ])
    with torch.no_grad():
        ref = model(torch.from_numpy(xs))
        if isinstance(ref, (tuple, list)):
            ref = ref[0]
    err = float(np.abs(ref.numpy().reshape(samples, -1) - logits).max())
    np.save(os.path.join(out, name + ".input.npy"), xs)
    np.save(os.path.join(out, name + ".sample.npy"), xs[:1])
    np.save(os.path.join(out, name + ".logits.npy"), logits.astype(np.float32))
    print(f"{name}: {os.path.getsize(path)} bytes, torch vs onnxruntime max |diff| {err:.2e}")
    return path


# ---------------------------------------------------------------------------------------------
# Small test models: each exercises operator forms PI users' exports contain.


class MiniImageNetResNet(nn.Module):
    """ImageNet-style stem (7x7/2 conv, BN, ReLU, 3x3/2 max-pool with padding) + 2 basic blocks
    + AdaptiveAvgPool(1) over a 3x3 map (a 9-element average) + Linear."""

    def __init__(self, c=8, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, c, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.b1 = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
        self.down = nn.Sequential(nn.Conv2d(c, 2 * c, 1, 2, bias=False), nn.BatchNorm2d(2 * c))
        self.b2 = nn.Sequential(nn.Conv2d(c, 2 * c, 3, 2, 1, bias=False), nn.BatchNorm2d(2 * c),
                                nn.ReLU(), nn.Conv2d(2 * c, 2 * c, 3, 1, 1, bias=False),
                                nn.BatchNorm2d(2 * c))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * c, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = F.relu(x + self.b1(x))
        x = F.relu(self.down(x) + self.b2(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class OptionA(nn.Module):
    """CIFAR ResNet option-A shortcut: x[:, :, ::2, ::2] zero-padded with planes//4 channels."""

    def __init__(self, planes):
        super().__init__()
        self.planes = planes

    def forward(self, x):
        p = self.planes // 4
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p), "constant", 0)


class CifarBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = OptionA(cout) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class CifarResNet(nn.Module):
    """The classic CIFAR ResNet-6n+2 (He et al. 2016, option A shortcuts)."""

    def __init__(self, n=1, widths=(4, 8, 16), classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            for j in range(n):
                layers.append(CifarBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.linear = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        x = F.avg_pool2d(x, x.size()[3])
        return self.linear(x.view(x.size(0), -1))


class MiniMobileNetV2(nn.Module):
    """ReLU6 (Clip), depthwise convs, an inverted residual, dropout, x.mean([2, 3]) (ReduceMean)."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.expand = nn.Sequential(nn.Conv2d(8, 24, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(24, 24, 3, 1, 1, groups=24, bias=False),
                                nn.BatchNorm2d(24), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(24, 8, 1, bias=False), nn.BatchNorm2d(8))
        self.head = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(16, classes))

    def forward(self, x):
        x = self.stem(x)
        x = x + self.project(self.dw(self.expand(x)))
        x = self.head(x).mean([2, 3])
        return self.classifier(x)


class MiniVgg(nn.Module):
    """Input normalisation inside the model (Sub/Div by per-channel constants), MaxPool 2x2,
    BatchNorm, a padded AvgPool(3, 1, 1) (count_include_pad), asymmetric F.pad before a conv,
    a dilated conv, x * 0.5, a 2-output graph (features and logits)."""

    def __init__(self, classes=10):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.c1 = nn.Conv2d(3, 8, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, 1, 0)
        self.c3 = nn.Conv2d(8, 16, 3, 1, 2, dilation=2)
        self.pool = nn.MaxPool2d(2, 2)
        self.avg = nn.AvgPool2d(3, 1, 1)
        self.fc = nn.Linear(16 * 4 * 4, classes)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.pool(F.relu(self.bn1(self.c1(x))))          # 16 -> 8
        x = F.relu(self.c2(F.pad(x, (1, 0, 1, 0))))           # asymmetric pad: 8 -> 7
        x = F.pad(x, (0, 1, 0, 1))                            # 7 -> 8
        x = self.avg(x) * 0.5
        x = self.pool(F.relu(self.c3(x)))                     # 8 -> 4
        feats = torch.flatten(x, 1)
        return self.fc(feats), feats


class MaskedRelu(nn.Module):
    """SNL-style per-element ReLU mask: alpha * relu(x) + (1 - alpha) * x, alpha in {0, 1}."""

    def __init__(self, shape, density, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("alpha", (torch.rand((1,) + shape, generator=g) < density).float())

    def forward(self, x):
        return self.alpha * F.relu(x) + (1 - self.alpha) * x


class MiniSnl(nn.Module):
    """Per-element ReLU masks (two layers, 30% and 60% kept) in a small conv net."""

    def __init__(self, classes=10):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, 1, 1)
        self.a1 = MaskedRelu((8, 16, 16), 0.3, 11)
        self.c2 = nn.Conv2d(8, 8, 3, 2, 1)
        self.a2 = MaskedRelu((8, 8, 8), 0.6, 12)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        x = self.a2(self.c2(self.a1(self.c1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class MiniDenseNet(nn.Module):
    """DenseNet pattern: BN -> ReLU -> conv on a concatenation (BN not after a conv), transition
    with AvgPool(2), final BN -> ReLU -> global pool; stem max-pool with ceil_mode."""

    def __init__(self, growth=4, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True))
        c = 8
        self.layers = nn.ModuleList()
        for _ in range(2):
            self.layers.append(nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, growth, 3, 1, 1)))
            c += growth
        self.trans = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1), nn.AvgPool2d(2))
        self.final = nn.BatchNorm2d(c // 2)
        self.fc = nn.Linear(c // 2, classes)

    def forward(self, x):
        x = self.stem(x)
        for layer in self.layers:
            x = torch.cat([x, layer(x)], 1)
        x = F.relu(self.final(self.trans(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def channel_shuffle(x, groups):
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, -1, h, w)


class MiniShuffleNet(nn.Module):
    """ShuffleNetV2 unit: chunk (Split), depthwise conv, concat, channel shuffle
    (Reshape/Transpose/Reshape), ceil-mode max-pool, x.mean([2, 3])."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.branch = nn.Sequential(nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                                    nn.Conv2d(4, 4, 3, 1, 1, groups=4, bias=False), nn.BatchNorm2d(4),
                                    nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        x = self.pool(self.stem(x))
        a, b = x.chunk(2, dim=1)
        x = channel_shuffle(torch.cat((a, self.branch(b)), 1), 2)
        return self.fc(x.mean([2, 3]))


class MiniSqueezeNet(nn.Module):
    """SqueezeNet fire module: ceil-mode max-pool, squeeze/expand, concat, final conv classifier
    with ReLU, AdaptiveAvgPool(1,1), flatten."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, 2), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(3, 2, ceil_mode=True))
        self.squeeze = nn.Conv2d(8, 4, 1)
        self.e1 = nn.Conv2d(4, 8, 1)
        self.e3 = nn.Conv2d(4, 8, 3, padding=1)
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(16, classes, 1), nn.ReLU(),
                                        nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x):
        x = self.features(x)
        s = F.relu(self.squeeze(x))
        x = torch.cat([F.relu(self.e1(s)), F.relu(self.e3(s))], 1)
        return torch.flatten(self.classifier(x), 1)


class MiniAdaptive(nn.Module):
    """AdaptiveAvgPool2d to a size that does not divide the map (4x4 -> 3x3, overlapping windows),
    as VGG and AlexNet have at small inputs; the TorchScript exporter refuses it, the dynamo
    exporter writes Transpose/GatherND/Where/Gather/Add/Div."""

    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(2, 2), nn.Conv2d(8, 8, 3, 1, 1),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(2, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((3, 3))
        self.classifier = nn.Linear(8 * 9, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def test_models():
    torch.manual_seed(SEED)
    return [
        ("imagenet_resnet", MiniImageNetResNet(), (3, 24, 24), {}),
        ("cifar_resnet8_a", CifarResNet(1), (3, 16, 16), {}),
        ("mobilenet_v2_mini", MiniMobileNetV2(), (3, 16, 16), {}),
        ("vgg_mini_2out", MiniVgg(), (3, 16, 16), {"output_names": ["logits", "features"]}),
        ("snl_masked", MiniSnl(), (3, 16, 16), {}),
        ("densenet_mini", MiniDenseNet(), (3, 16, 16), {}),
        ("shufflenet_mini", MiniShuffleNet(), (3, 16, 16), {}),
        ("squeezenet_mini", MiniSqueezeNet(), (3, 24, 24), {}),
        # The same network through the dynamo exporter at opset 18 and with external data.
        ("imagenet_resnet_dynamo", MiniImageNetResNet(), (3, 24, 24), {"exporter": "dynamo", "opset": 18}),
        ("cifar_resnet8_a_external", CifarResNet(1), (3, 16, 16), {"external": True}),
        ("adaptive_pool_dynamo", MiniAdaptive(), (3, 16, 16), {"exporter": "dynamo", "opset": 18}),
    ]


# ---------------------------------------------------------------------------------------------
# torchvision and the PI literature's CIFAR models (figures).

TORCHVISION = [
    "alexnet", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "resnet18", "resnet34", "resnet50",
    "resnet101", "resnext50_32x4d", "wide_resnet50_2", "densenet121", "densenet161",
    "googlenet", "inception_v3", "mobilenet_v2", "mobilenet_v3_small", "mnasnet0_5",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "squeezenet1_0", "squeezenet1_1",
    "regnet_x_400mf", "regnet_y_400mf", "efficientnet_b0", "convnext_tiny",
]


def torchvision_models(size):
    import torchvision.models as tvm
    for name in TORCHVISION:
        torch.manual_seed(SEED)
        kwargs = {"weights": None}
        if name == "googlenet":
            kwargs.update(aux_logits=False, init_weights=True)
        if name == "inception_v3":
            kwargs.update(aux_logits=False, init_weights=True)
        # Inception-v3 needs at least 75x75 (its stem shrinks the map by 32 without padding).
        s = max(size, 96) if name == "inception_v3" else size
        yield name, getattr(tvm, name)(**kwargs), (3, s, s), {}


class CifarVgg16(nn.Module):
    """The CIFAR VGG-16 of the PI literature (BN, max-pool, 512 -> classes)."""

    def __init__(self, classes=10):
        super().__init__()
        cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def cifar_models():
    import torchvision.models as tvm
    torch.manual_seed(SEED)
    r18 = tvm.resnet18(weights=None, num_classes=100)
    # CIFAR variant: 3x3 stem, no max-pool (the PI literature's ResNet-18).
    r18.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    r18.maxpool = nn.Identity()
    yield "cifar_resnet18", r18, (3, 32, 32), {}
    yield "cifar_resnet32", CifarResNet(5, (16, 32, 64), 10), (3, 32, 32), {}
    yield "cifar_resnet56", CifarResNet(9, (16, 32, 64), 10), (3, 32, 32), {}
    yield "cifar_vgg16", CifarVgg16(10), (3, 32, 32), {}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set", choices=["tests", "torchvision", "cifar"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=64, help="input size of the torchvision models")
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--samples", type=int, default=0, help="inputs per model (default 4; 8 for tests)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    models = {"tests": test_models, "torchvision": lambda: torchvision_models(args.size),
              "cifar": cifar_models}[args.set]()
    only = set(filter(None, args.only.split(",")))
    failed = []
    for name, model, shape, opts in models:
        if only and name not in only:
            continue
        opts = dict(opts)
        samples = args.samples or (8 if args.set == "tests" else 4)
        try:
            calibrate_bn(model, shape)
            try:
                export(model, name, args.out, shape, samples=samples, **opts)
            except Exception as e:
                if opts.get("exporter") == "dynamo":
                    raise
                # The TorchScript exporter refuses some forms (AdaptiveAvgPool2d to a size that
                # does not divide the input): PI users then switch to the dynamo exporter.
                print(f"{name}: TorchScript export failed ({type(e).__name__}); retrying with dynamo")
                export(model, name, args.out, shape, samples=samples,
                       **dict(opts, exporter="dynamo", opset=18))
        except Exception as e:  # keep going: the table lists what did not export
            failed.append(name)
            print(f"{name}: export failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    if failed:
        print("export failed for:", ", ".join(failed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
