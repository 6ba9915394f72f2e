"""The seed architectures (the blog posts cnnprof grew from), by clear names.

Each entry: (factory, default per-sample input, description). See docs/zoo.md.

The classes are reconstructed from the seed documents in ``seeds/`` (their code lost its
indentation, and one lost its commas, in scraping). They keep the seeds' quirks on purpose,
because cnnprof is tested on the models people actually wrote: ``print`` calls inside
``forward`` (cnnprof captures them), a hard-coded ``view`` that only fits one input size, a
ReLU module applied three times, a BasicBlock that applies ReLU twice in a row. Where a quirk
would stop the class from being built at all, the smallest fix is made and named in the
class docstring.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnprof.errors import ModelLoadError
from cnnprof.inputs import parse_input_spec
from cnnprof.zoo.base import ZooEntry

# -- seeds/001: LeNet, AlexNet (256*5*5), the MNIST CNN ------------------------------------


class LeNet(nn.Module):
    """LeNet from seeds/001: conv(3x3, pad 1) → pool → conv(5x5) → pool → 3 linear, 1x28x28."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.layer1 = nn.Sequential()
        self.layer1.add_module("conv1", nn.Conv2d(1, 6, kernel_size=3, padding=1))
        self.layer1.add_module("pool1", nn.MaxPool2d(kernel_size=2))
        self.layer2 = nn.Sequential()
        self.layer2.add_module("conv2", nn.Conv2d(6, 16, kernel_size=5))
        self.layer2.add_module("pool2", nn.MaxPool2d(kernel_size=2))
        self.layer3 = nn.Sequential()
        self.layer3.add_module("fc1", nn.Linear(16 * 5 * 5, 120))
        self.layer3.add_module("fc2", nn.Linear(120, 84))
        self.layer3.add_module("fc3", nn.Linear(84, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(x))
        return self.layer3(torch.flatten(x, 1))


class AlexNet5x5(nn.Module):
    """AlexNet from seeds/001: conv1 without padding, so at 3x224x224 the features end at
    256x5x5 and ``view(..., 256*5*5)`` fits. At the classic 227x227 input they end at 256x6x6
    and the hard-coded view raises: kept as the zoo's failing model (``alexnet_seed_227``)."""

    def __init__(self, num_class: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=(11, 11), stride=(4, 4)),
            nn.ReLU(True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=(5, 5), padding=2),
            nn.ReLU(True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=(3, 3), padding=1),
            nn.ReLU(True),
            nn.Conv2d(384, 256, kernel_size=(3, 3), padding=1),
            nn.ReLU(True),
            nn.Conv2d(256, 256, kernel_size=(3, 3), padding=1),
            nn.ReLU(True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(),
            nn.Linear(256 * 5 * 5, 4096),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Linear(4096, num_class),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        print(x.size())
        x = x.view(x.size(0), 256 * 5 * 5)
        return self.classifier(x)


class MnistCNN(nn.Module):
    """The MNIST CNN of seeds/001 (class ``CNN``): four conv+BN+ReLU stages, 1x28x28."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=(3, 3)),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
        )
        self.layer2 = nn.Sequential(
            nn.Conv2d(16, 32, kernel_size=(3, 3)),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.layer3 = nn.Sequential(
            nn.Conv2d(32, 64, kernel_size=(3, 3)),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
        )
        self.layer4 = nn.Sequential(
            nn.Conv2d(64, 128, kernel_size=(3, 3)),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.fc = nn.Sequential(
            nn.Linear(128 * 4 * 4, 1024),
            nn.ReLU(inplace=True),
            nn.Linear(1024, 128),
            nn.Linear(128, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)


# -- seeds/000: the PyTorch BuildAlexNet('new') and the TensorFlow graph with LRN ----------


class BuildAlexNet(nn.Module):
    """seeds/000's ``BuildAlexNet(model_type, n_output)``. Only ``'new'`` is built here:
    ``'pre'`` copies ``models.alexnet(pretrained=True)``, which downloads weights. The seed's
    ``'new'`` features have four convolutions, not five (conv 384→256 feeds the last pool
    directly): kept as written."""

    def __init__(self, model_type: str, n_output: int) -> None:
        super().__init__()
        self.model_type = model_type
        if model_type != "new":
            raise ValueError("only model_type='new' is built: 'pre' needs downloaded weights")
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 0),
            nn.Conv2d(64, 192, 5, 1, 2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 0),
            nn.Conv2d(192, 384, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 0),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(),
            nn.Linear(9216, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, n_output),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return self.classifier(x)


class TFSamePad2d(nn.Module):
    """TensorFlow's ``padding="SAME"`` for a strided convolution: the output is
    ``ceil(in / stride)`` and the extra pixel of an odd total goes to the bottom/right, which
    no symmetric ``nn.Conv2d(padding=...)`` can express. Computed per input size."""

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def _pads(self, size: int) -> tuple[int, int]:
        out = -(-size // self.stride)
        total = max((out - 1) * self.stride + self.kernel_size - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self._pads(int(x.shape[-2]))
        left, right = self._pads(int(x.shape[-1]))
        return F.pad(x, (left, right, top, bottom))


class AlexNetLRN(nn.Module):
    """The TensorFlow AlexNet of seeds/000, in PyTorch modules: SAME-padded convolutions,
    ``tf.nn.lrn(depth_radius=4, bias=1, alpha=1e-3/9, beta=0.75)`` after conv1 and conv2,
    VALID 3x3/2 max-pools, three fully connected layers (the seed applies ReLU after the
    third too) and a 1000→10 softmax layer. Input 3x227x227 as the post says.

    TF's LRN sums over ``2*depth_radius+1 = 9`` channels and scales ``alpha`` per element;
    ``nn.LocalResponseNorm`` divides alpha by its size, so ``alpha = (1e-3/9) * 9 = 1e-3``.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(OrderedDict([
            ("pad", TFSamePad2d(11, 4)),
            ("conv", nn.Conv2d(3, 64, 11, stride=4)),
            ("relu", nn.ReLU()),
            ("lrn", nn.LocalResponseNorm(9, alpha=1e-3, beta=0.75, k=1.0)),
            ("pool", nn.MaxPool2d(3, 2)),
        ]))
        self.conv2 = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(64, 192, 5, padding=2)),
            ("relu", nn.ReLU()),
            ("lrn", nn.LocalResponseNorm(9, alpha=1e-3, beta=0.75, k=1.0)),
            ("pool", nn.MaxPool2d(3, 2)),
        ]))
        self.conv3 = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(192, 384, 3, padding=1)), ("relu", nn.ReLU()),
        ]))
        self.conv4 = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(384, 256, 3, padding=1)), ("relu", nn.ReLU()),
        ]))
        self.conv5 = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(256, 256, 3, padding=1)), ("relu", nn.ReLU()),
            ("pool", nn.MaxPool2d(3, 2)),
        ]))
        self.fc6 = nn.Sequential(nn.Linear(6 * 6 * 256, 4096), nn.ReLU())
        self.fc7 = nn.Sequential(nn.Linear(4096, 4096), nn.ReLU())
        self.fc8 = nn.Sequential(nn.Linear(4096, 1000), nn.ReLU())
        self.softmax = nn.Sequential(nn.Linear(1000, num_classes), nn.Softmax(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))
        x = x.reshape(-1, 6 * 6 * 256)
        return self.softmax(self.fc8(self.fc7(self.fc6(x))))


# -- seeds/002 and seeds/003: AlexNet with a Flatten module, the LeNet containers ----------


class AlexNetFlatten(nn.Module):
    """seeds/002's AlexNet (its commas were lost in scraping: ``nn.Conv2d(364, ...)`` is
    ``nn.Conv2d(3, 64, ...)``). Like torchvision's, but the flatten is an ``nn.Flatten``
    module inside the classifier, after the first Dropout."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(),
            nn.Flatten(start_dim=1),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        return self.classifier(x)


class LeNetSequetial(nn.Module):
    """seeds/003's ``LeNetSequetial`` (sic): two ``nn.Sequential`` with numeric keys, 3x32x32.
    The seed calls ``super(LeNet2, self).__init__()``, a name it never defines (a NameError
    at construction); the class's own name is used instead."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = x.view(x.size()[0], -1)
        return self.classifier(x)


class LeNetSequentialOrderDict(nn.Module):
    """seeds/003's LeNet with named layers (``nn.Sequential(OrderedDict(...))``). The seed
    elides its ``forward`` (``... ...``); it is the one of ``LeNetSequetial``."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict({
            "conv1": nn.Conv2d(3, 6, 5),
            "relu1": nn.ReLU(inplace=True),
            "pool1": nn.MaxPool2d(kernel_size=2, stride=2),
            "conv2": nn.Conv2d(6, 16, 5),
            "relu2": nn.ReLU(inplace=True),
            "pool2": nn.MaxPool2d(kernel_size=2, stride=2),
        }))
        self.classifier = nn.Sequential(OrderedDict({
            "fc1": nn.Linear(16 * 5 * 5, 120),
            "relu3": nn.ReLU(),
            "fc2": nn.Linear(120, 84),
            "relu4": nn.ReLU(inplace=True),
            "fc3": nn.Linear(84, classes),
        }))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = x.view(x.size()[0], -1)
        return self.classifier(x)


class ModuleListNet(nn.Module):
    """seeds/003's ``ModuleList`` example: 20 ``Linear(10, 10)`` applied in a Python loop."""

    def __init__(self) -> None:
        super().__init__()
        self.linears = nn.ModuleList([nn.Linear(10, 10) for _ in range(20)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for linear in self.linears:
            x = linear(x)
        return x


class ModuleDictNet(nn.Module):
    """seeds/003's ``ModuleDict`` example: ``forward(x, choice, act)`` picks a layer by key.
    A zoo model is called with tensors only, so the keys also come from the constructor
    (``--arg choice=pool --arg act=prelu``); a call that passes them still wins."""

    def __init__(self, choice: str = "conv", act: str = "relu") -> None:
        super().__init__()
        self.choices = nn.ModuleDict({
            "conv": nn.Conv2d(10, 10, 3),
            "pool": nn.MaxPool2d(3),
        })
        self.activations = nn.ModuleDict({
            "relu": nn.ReLU(),
            "prelu": nn.PReLU(),
        })
        if choice not in self.choices or act not in self.activations:
            raise ValueError(f"choice must be one of {list(self.choices)} and act one of "
                             f"{list(self.activations)}")
        self.choice = choice
        self.act = act

    def forward(self, x: torch.Tensor, choice: str | None = None,
                act: str | None = None) -> torch.Tensor:
        x = self.choices[choice or self.choice](x)
        return self.activations[act or self.act](x)


# -- seeds/004: the torchstat post (AlexNet(10), VGG16, Inception, BasicBlock) -------------


class AlexNetStat(nn.Module):
    """seeds/004's AlexNet(num_classes): torchvision's layers without the adaptive pool,
    ``print(x.size())`` and ``view(x.size(0), 256*6*6)`` in forward. 57,044,810 params at 10
    classes; its torchstat table is the seed's first golden table."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        print(x.size())
        x = x.view(x.size(0), 256 * 6 * 6)
        return self.classifier(x)


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for stage in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
        for width in stage:
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(True)]
            channels = width
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGG16Stat(nn.Module):
    """seeds/004's VGG(num_classes): VGG-16 without an adaptive pool, ``print(x.size())`` in
    forward. 138,357,544 params at 1000 classes; the seed's second golden torchstat table.
    (seeds/001 prints the same layers, calling an ``_initialize_weights`` it never defines.)"""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.features = _vgg16_features()
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        print(x.size())
        x = x.view(x.size(0), -1)
        return self.classifier(x)


class BasicConv2d(nn.Module):
    """seeds/004: convolution without bias followed by BatchNorm (eps 0.001); no ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs: Any) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class Inception(nn.Module):
    """seeds/004's Inception module (``Inception(3)`` on 3x224x224). The pool branch pools
    without padding (3x3/1: 224 → 222) and gets the two pixels back from its 1x1 conv's
    ``padding=1``; every branch prints its size."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branchpool_1 = nn.AvgPool2d(kernel_size=3, stride=1)
        self.branch_pool = BasicConv2d(in_channels, 64, kernel_size=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        print("branch1x1_size: ", branch1x1.size())
        branch5x5 = self.branch5x5_1(x)
        branch5x5 = self.branch5x5_2(branch5x5)
        print("branch5x5_size: ", branch5x5.size())
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = self.branch3x3_2(branch3x3)
        branch3x3 = self.branch3x3_3(branch3x3)
        print("branch3x3_size: ", branch3x3.size())
        branch_pool = self.branchpool_1(x)
        branch_pool = self.branch_pool(branch_pool)
        print("branch_pool_size: ", branch_pool.size())
        outputs = [branch1x1, branch5x5, branch3x3, branch_pool]
        return torch.cat(outputs, 1)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """seeds/004's ResNet BasicBlock. Unlike torchvision's it applies ``self.relu`` after
    ``bn2`` *and* after the residual add, so one ReLU module runs three times per call; the
    residual ``out += residual`` is a functional op no module hook sees."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu(out)
        if self.downsample is not None:
            residual = self.downsample(x)
        out += residual
        out = self.relu(out)
        return out


# -- factories: the seeds' own constructor arguments, overridable with --arg ---------------


def _alexnet_seed(num_classes: int = 10) -> nn.Module:
    return AlexNetStat(num_classes)


def _vgg16_seed(num_classes: int = 1000) -> nn.Module:
    return VGG16Stat(num_classes)


def _alexnet_5x5(num_class: int = 10) -> nn.Module:
    return AlexNet5x5(num_class)


def _alexnet_build_new(n_output: int = 10) -> nn.Module:
    return BuildAlexNet("new", n_output)


def _lenet_sequential(classes: int = 10) -> nn.Module:
    return LeNetSequetial(classes)


def _lenet_ordereddict(classes: int = 10) -> nn.Module:
    return LeNetSequentialOrderDict(classes)


def _inception_block(in_channels: int = 3) -> nn.Module:
    return Inception(in_channels)


def _basic_block(inplanes: int = 64, planes: int = 64, stride: int = 1) -> nn.Module:
    # a stride or width change needs the projection the seed leaves to its caller
    downsample: nn.Module | None = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(planes),
        )
    return BasicBlock(inplanes, planes, stride, downsample)


# descriptions are for someone choosing a model to try (docs/zoo.md says where each comes from)
ENTRIES: dict[str, tuple[Callable[..., nn.Module], str, str]] = {
    "lenet": (LeNet, "1x28x28",
              "LeNet-5 digit classifier for 28x28 MNIST images, in three Sequential blocks"),
    "lenet_sequential": (
        _lenet_sequential, "3x32x32",
        "LeNet for 32x32 colour images (CIFAR-10) as features/classifier Sequentials"),
    "lenet_ordereddict": (
        _lenet_ordereddict, "3x32x32",
        "LeNet for 32x32 colour images, layers named conv1..fc3 (Sequential of an OrderedDict)"),
    "mnist_cnn": (MnistCNN, "1x28x28",
                  "small MNIST classifier: 4 conv+BatchNorm+ReLU stages, 3 linear layers"),
    "alexnet_seed": (
        _alexnet_seed, "3x224x224",
        "AlexNet with 10 classes that flattens with view(256*6*6) and prints in forward"),
    "alexnet_seed_227": (
        _alexnet_5x5, "3x227x227",
        "AlexNet that flattens to 256*5*5: its 227x227 default fails, to show a failure "
        "report (224x224 runs)"),
    "alexnet_build_new": (
        _alexnet_build_new, "3x227x227",
        "a smaller AlexNet with four convolutions and 10 classes"),
    "alexnet_lrn": (
        AlexNetLRN, "3x227x227",
        "AlexNet as first published: 'same' padding, local response normalisation, softmax, "
        "10 classes"),
    "alexnet_flatten": (
        AlexNetFlatten, "3x224x224",
        "torchvision's AlexNet layers with an nn.Flatten inside the classifier"),
    "vgg16_seed": (
        _vgg16_seed, "3x224x224",
        "VGG-16 without adaptive pooling (224x224 inputs only); prints in forward"),
    "inception_block": (
        _inception_block, "3x224x224",
        "one GoogLeNet Inception module: four parallel conv+BatchNorm branches"),
    "basic_block": (
        _basic_block, "64x56x56",
        "one ResNet BasicBlock (64 channels): a ReLU module called 3 times, a residual add"),
    "modulelist_linears": (
        ModuleListNet, "10", "20 Linear(10, 10) layers held in an nn.ModuleList"),
    "moduledict_net": (
        ModuleDictNet, "10x32x32",
        "layers chosen from an nn.ModuleDict: --arg choice=conv|pool act=relu|prelu"),
}


def entry(name: str, kwargs: dict[str, Any]) -> ZooEntry:
    factory_obj, default, description = ENTRIES[name]

    def factory() -> nn.Module:
        try:
            return factory_obj(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ModelLoadError(f"{name}: bad --arg: {exc}") from exc

    return ZooEntry(
        name=name,
        source="classic",
        factory=factory,
        default_inputs=(parse_input_spec(default),),
        description=description,
    )
