"""The allocator chooses only widths a grouped conv can take (multiples of the group's
``step``), so the plan surgery builds is the one the cost model priced (issue 16)."""

import copy

import torch
from torch import nn

from edgeprune.budget import Budget
from edgeprune.budget.allocator import allocate
from edgeprune.budget.costmodel import CostModel
from edgeprune.cost import count
from edgeprune.methods.l1 import l1_group_scores
from edgeprune.surgery import apply_plan_, prunable_layers

SIZE = (3, 16, 16)


class Grouped(nn.Module):
    """RegNet/ResNeXt-like: 1x1 -> grouped 3x3 (4 groups) -> 1x1."""

    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 32, 1), nn.BatchNorm2d(32), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=4), nn.BatchNorm2d(32))
        self.c = nn.Sequential(nn.ReLU(), nn.Conv2d(32, 24, 1), nn.BatchNorm2d(24), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10))

    def forward(self, x):
        return self.head(self.c(self.b(self.a(x))))


def test_widths_are_multiples_of_the_group_step_and_priced_as_built():
    torch.manual_seed(0)
    model = Grouped().eval()
    groups = prunable_layers(model, SIZE)
    stepped = [g for g in groups if g.step > 1]
    assert stepped, [(g.name, g.step) for g in groups]
    cost = CostModel(model, groups, SIZE, None)
    scores = l1_group_scores(model, groups)
    for ratio in (0.8, 0.6, 0.45):
        alloc = allocate(cost, groups, scores, Budget(flops_ratio=ratio))
        for g in stepped:
            assert alloc.widths[g.name] % g.step == 0, (ratio, g.name, alloc.widths[g.name])
        slim = apply_plan_(copy.deepcopy(model), alloc.plan, torch.zeros(1, *SIZE))
        assert count(slim, SIZE).flops == cost.metrics(alloc.widths)["flops"]
