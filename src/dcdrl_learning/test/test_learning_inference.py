"""NumpyActor: equal to the torch Actor within float32 rounding, preallocated single-observation path,
validated loads."""
import numpy as np
import pytest
import torch

from dcdrl_learning.codec import WeightsRejected, encode_weights
from dcdrl_learning.inference import NumpyActor, actor_shapes
from dcdrl_learning.networks import PRESETS, NetworkConfig, architecture_id, build_actor

CONFIGS = {
    'dcdrl': PRESETS['dcdrl'],
    'cloud_edge': PRESETS['cloud_edge'],
    'tanh_ln': NetworkConfig(actor_hidden=(33, 17), actor_layer_norm=True, activation='tanh'),
    'elu': NetworkConfig(actor_hidden=(40,), activation='elu'),
}


# Float32 sums in another order (numpy's BLAS vs torch's kernels, chosen per CPU) over pre-activations
# in the tens: measured up to 2.4e-5 (cloud_edge, 300 input draws); a clean-clone run once saw
# 1.19e-5 against the former 1e-5.
ATOL = 1e-4


def trained_like_actor(cfg: NetworkConfig, obs_dim: int, action_dim: int, seed: int = 0):
    """An actor whose weights are not at their init scale (outputs away from 0, norms not identity)."""
    actor = build_actor(cfg, obs_dim, action_dim, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in actor.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.2)
    return actor


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_numpy_actor_matches_torch(name):
    cfg, obs_dim, action_dim = CONFIGS[name], 73, 20
    actor = trained_like_actor(cfg, obs_dim, action_dim)
    payload = encode_weights(actor, architecture_id(cfg, obs_dim, action_dim), version=1)
    fast = NumpyActor.from_payload(payload, cfg, obs_dim, action_dim)
    obs = np.random.default_rng(0).standard_normal((50, obs_dim)).astype(np.float32) * 3
    with torch.no_grad():
        expected = actor(torch.from_numpy(obs)).numpy()
    assert np.abs(expected).max() > 0.5  # not a trivially small output
    np.testing.assert_allclose(fast(obs), expected, atol=ATOL, rtol=0)
    for i in range(0, 50, 7):
        np.testing.assert_allclose(fast(obs[i]), expected[i], atol=ATOL, rtol=0)
    np.testing.assert_allclose(fast(obs[0].astype(np.float64)), expected[0], atol=ATOL, rtol=0)


def test_single_observation_path_reuses_its_buffers():
    cfg = PRESETS['cloud_edge']
    actor = trained_like_actor(cfg, 12, 1)
    fast = NumpyActor(cfg, 12, 1, {k: v.numpy() for k, v in actor.state_dict().items()})
    first = fast(np.ones(12, np.float32))
    kept = first.copy()
    second = fast(np.zeros(12, np.float32))
    assert second is first  # the same preallocated buffer, overwritten
    assert not np.array_equal(kept, second)
    out = np.empty(1, np.float32)
    assert fast(np.ones(12, np.float32), out=out) is out and np.array_equal(out, kept)


def test_load_payload_validates_and_swaps_in_place():
    cfg, obs_dim, action_dim = PRESETS['dcdrl'], 10, 2
    arch = architecture_id(cfg, obs_dim, action_dim)
    a, b = trained_like_actor(cfg, obs_dim, action_dim, 1), trained_like_actor(cfg, obs_dim, action_dim, 2)
    fast = NumpyActor.from_payload(encode_weights(a, arch, 3), cfg, obs_dim, action_dim)
    assert fast.version == 3
    obs = np.linspace(-1, 1, obs_dim, dtype=np.float32)
    before = fast(obs).copy()
    with pytest.raises(WeightsRejected, match='stale_version'):
        fast.load_payload(encode_weights(b, arch, 3))
    assert np.array_equal(fast(obs), before) and fast.version == 3
    fast.load_payload(encode_weights(b, arch, 4))
    with torch.no_grad():
        np.testing.assert_allclose(fast(obs), b(torch.from_numpy(obs)).numpy(), atol=ATOL)
    assert fast.version == 4
    other_arch = architecture_id(PRESETS['cloud_edge'], obs_dim, action_dim)
    cloud = trained_like_actor(PRESETS['cloud_edge'], obs_dim, action_dim)
    with pytest.raises(WeightsRejected, match='wrong_architecture'):
        fast.load_payload(encode_weights(cloud, other_arch, 9))
    with pytest.raises(WeightsRejected, match='wrong_architecture'):
        NumpyActor.from_payload(encode_weights(cloud, other_arch, 9), cfg, obs_dim, action_dim)


def test_load_weights_refusals():
    cfg = PRESETS['cloud_edge']
    shapes = actor_shapes(cfg, 4, 2)
    good = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    fast = NumpyActor(cfg, 4, 2, good)
    with pytest.raises(ValueError, match='missing'):
        fast.load_weights({k: v for k, v in good.items() if k != 'bias_3'})
    with pytest.raises(ValueError, match='shape'):
        fast.load_weights({**good, 'weight_0': np.zeros((2, 4), np.float32)})
    with pytest.raises(ValueError, match='NaN or Inf'):
        fast.load_weights({**good, 'bias_0': np.full(256, np.nan, np.float32)})
    with pytest.raises(ValueError, match='obs'):
        fast(np.zeros(5, np.float32))
    with pytest.raises(ValueError, match='obs'):
        fast(np.zeros((2, 2, 4), np.float32))


def test_actor_shapes_match_the_torch_actor():
    for cfg in CONFIGS.values():
        actor = build_actor(cfg, 6, 3, seed=0)
        assert actor_shapes(cfg, 6, 3) == {k: tuple(v.shape) for k, v in actor.state_dict().items()}
