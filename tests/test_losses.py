import math

import pytest
import torch

from dapt_core.engine.losses import inter_dispersion, intra_dispersion


def test_inter_dispersion_matches_hand_computed_value():
    g = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # squared distances of the pairs (0,1), (0,2), (1,2): 2, 4, 2
    expected = (math.exp(-2 * 2) + math.exp(-2 * 4) + math.exp(-2 * 2)) / 3
    assert inter_dispersion(g, t=2.0).item() == pytest.approx(expected, rel=1e-6)
    assert inter_dispersion(g, t=1.0).item() == pytest.approx((2 * math.exp(-2) + math.exp(-4)) / 3, rel=1e-6)


def test_inter_dispersion_falls_as_classes_spread():
    close = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, -0.1], [1.0, 0.0]]), dim=1)
    apart = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [-0.5, 0.87], [-0.5, -0.87]]), dim=1)
    assert inter_dispersion(apart) < inter_dispersion(close)


def test_inter_dispersion_is_float32_and_has_finite_gradient_for_identical_classes():
    g = torch.ones(3, 4, dtype=torch.bfloat16, requires_grad=True)
    value = inter_dispersion(g)
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(1.0)
    value.backward()
    assert torch.isfinite(g.grad.float()).all()


def test_intra_dispersion_is_mean_over_batch_and_width():
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    prototypes = torch.tensor([[0.5, 0.5], [0.0, 0.0]])
    labels = torch.tensor([0, 1])
    # differences (0.5, -0.5) and (0, 1): squares 0.25, 0.25, 0, 1 -> mean over 4 elements
    assert intra_dispersion(f, prototypes, labels).item() == pytest.approx(0.375)


def test_intra_dispersion_is_zero_at_the_prototype():
    prototypes = torch.randn(3, 8)
    labels = torch.tensor([2, 0, 1, 2])
    assert intra_dispersion(prototypes[labels], prototypes, labels).item() == 0.0
