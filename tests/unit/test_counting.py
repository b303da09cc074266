from edgeprune.cost import count
from edgeprune.models import create_model
from edgeprune.surgery import apply_plan_, uniform_plan


def test_resnet56_counts_match_literature():
    c = count(create_model("resnet56"))
    assert 0.84e6 < c.params < 0.86e6
    assert 124e6 < c.flops < 127e6  # ~125M MACs
    assert c.weight_bytes > 4 * c.params
    assert c.peak_activation_bytes == 2 * 16 * 32 * 32 * 4


def test_pruning_reduces_counts():
    model = create_model("resnet8")
    dense = count(model)
    pruned = count(apply_plan_(model, uniform_plan(model, 0.5)))
    assert pruned.params < dense.params / 2 and pruned.flops < dense.flops / 2
