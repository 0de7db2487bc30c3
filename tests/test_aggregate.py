import torch

from anoclust.features.aggregate import aggregate_patches


def test_shapes_and_concatenation_order():
    a = torch.randn(2, 4, 8, 8)
    b = torch.randn(2, 6, 4, 4)
    bags = aggregate_patches([a, b])
    assert bags.shape == (2, 64, 10)


def test_neighbourhood_average_hand_computed():
    # A single 1 in the middle of a 3x3 map: every cell sees it in its 3x3 window, but border
    # cells average over fewer (existing) neighbours.
    fmap = torch.zeros(1, 1, 3, 3)
    fmap[0, 0, 1, 1] = 1.0
    bags = aggregate_patches([fmap])[0, :, 0].reshape(3, 3)
    assert torch.allclose(bags[1, 1], torch.tensor(1 / 9))
    assert torch.allclose(bags[0, 0], torch.tensor(1 / 4))
    assert torch.allclose(bags[0, 1], torch.tensor(1 / 6))


def test_constant_deep_map_upsamples_to_constant():
    shallow = torch.zeros(1, 1, 4, 4)
    deep = torch.full((1, 2, 2, 2), 3.0)
    bags = aggregate_patches([shallow, deep])
    assert torch.allclose(bags[0, :, 1:], torch.tensor(3.0))
