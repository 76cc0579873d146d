"""Networks: presets, shapes, architecture ids, the batched critic ensemble, config validation."""
import json
import os
import subprocess
import sys

import pytest
import torch

from dcdrl_learning.networks import (
    PRESETS,
    Actor,
    CriticEnsemble,
    NetworkConfig,
    architecture_id,
    build_actor,
    build_critic,
    count_parameters,
    network_config,
)


def test_cloud_edge_actor_has_the_seed_parameter_count():
    # 12 inputs -> 256 -> 128 -> 64 -> 1: about 44.5 k parameters in the seed.
    actor = build_actor(PRESETS['cloud_edge'], 12, 1, seed=0)
    assert count_parameters(actor) == 12 * 256 + 256 + 256 * 128 + 128 + 128 * 64 + 64 + 64 + 1 == 44545


def test_dcdrl_preset_shapes_and_layer_norm():
    cfg = PRESETS['dcdrl']
    actor = build_actor(cfg, 73, 20, seed=0)
    shapes = {k: tuple(v.shape) for k, v in actor.state_dict().items()}
    assert shapes['weight_0'] == (73, 400) and shapes['weight_1'] == (400, 300) and shapes['weight_2'] == (300, 20)
    assert shapes['norm_weight_0'] == (400,) and shapes['norm_bias_1'] == (300,)
    assert 'norm_weight_2' not in shapes  # no norm on the output layer
    critic = build_critic(cfg, 73, 20, n_critics=1, seed=0)
    cshapes = {k: tuple(v.shape) for k, v in critic.state_dict().items()}
    # action joins after the first layer: obs -> 400, cat(400, 20) -> 300 -> 1
    assert cshapes['weight_0'] == (1, 73, 400) and cshapes['weight_1'] == (1, 420, 300)
    assert cshapes['weight_2'] == (1, 300, 1)


def test_actor_output_is_bounded_and_batched():
    actor = build_actor(PRESETS['dcdrl'], 7, 3, seed=1)
    with torch.no_grad():
        for p in actor.parameters():
            p.mul_(50.0)  # saturate: the output must still be within [-1, 1]
        out = actor(torch.randn(16, 7) * 10)
    assert out.shape == (16, 3)
    assert out.abs().max() <= 1.0
    assert actor(torch.randn(7)).shape == (3,)


def test_seeded_build_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = build_actor(PRESETS['cloud_edge'], 5, 2, seed=7)
    after = torch.rand(1)
    assert torch.equal(expected, after)
    b = build_actor(PRESETS['cloud_edge'], 5, 2, seed=7)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    c = build_actor(PRESETS['cloud_edge'], 5, 2, seed=8)
    assert not torch.equal(a.weight_0, c.weight_0)


@pytest.mark.parametrize('preset', ['cloud_edge', 'dcdrl'])
def test_critic_ensemble_members_are_independent_networks(preset):
    cfg = PRESETS[preset]
    twin = build_critic(cfg, 6, 2, n_critics=2, seed=3)
    obs, act = torch.randn(9, 6), torch.rand(9, 2) * 2 - 1
    q = twin(obs, act)
    assert q.shape == (2, 9)
    # Member k equals a single critic holding member k's weights.
    for k in range(2):
        single = CriticEnsemble(cfg, 6, 2, n_critics=1)
        single.load_state_dict({name: value[k:k + 1] for name, value in twin.state_dict().items()})
        assert torch.allclose(single(obs, act)[0], q[k], atol=1e-6)
    assert torch.allclose(twin(obs, act, members=1)[0], q[0])
    assert not torch.allclose(q[0], q[1])
    with pytest.raises(ValueError, match='members'):
        twin(obs, act, members=3)


def test_critic_gradients_stay_within_their_member():
    twin = build_critic(PRESETS['cloud_edge'], 4, 1, n_critics=2, seed=0)
    q = twin(torch.randn(5, 4), torch.randn(5, 1))
    q[0].sum().backward()
    for name, p in twin.named_parameters():
        assert p.grad[1].abs().max() == 0, name
        assert p.grad[0].abs().max() > 0, name


def test_architecture_id_format_and_sensitivity():
    aid = architecture_id(PRESETS['dcdrl'], 73, 20)
    assert aid.startswith('mlp-a400x300ln-tanh-o73-a20-') and len(aid.rsplit('-', 1)[1]) == 8
    assert architecture_id(PRESETS['cloud_edge'], 12, 1).startswith('mlp-a256x128x64-tanh-o12-a1-')
    variants = {
        aid,
        architecture_id(PRESETS['dcdrl'], 74, 20),
        architecture_id(PRESETS['dcdrl'], 73, 21),
        architecture_id(PRESETS['dcdrl'].with_changes(critic_hidden=(400, 301)), 73, 20),
        architecture_id(PRESETS['dcdrl'].with_changes(critic_action_layer=0), 73, 20),
        architecture_id(PRESETS['dcdrl'].with_changes(activation='tanh'), 73, 20),
        architecture_id(PRESETS['dcdrl'].with_changes(final_init=1e-3), 73, 20),
    }
    assert len(variants) == 7
    # a list (from YAML) and a tuple give the same config and id
    assert architecture_id(NetworkConfig.from_dict(PRESETS['dcdrl'].to_dict()), 73, 20) == aid


def test_architecture_id_is_identical_in_another_process():
    code = ('from dcdrl_learning.networks import PRESETS, architecture_id;'
            'print(architecture_id(PRESETS["dcdrl"], 73, 20))')
    env = dict(os.environ, PYTHONHASHSEED='12345')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert out.stdout.strip() == architecture_id(PRESETS['dcdrl'], 73, 20)


@pytest.mark.parametrize('changes, match', [
    ({'actor_hidden': ()}, 'actor_hidden'),
    ({'critic_hidden': (64, 0)}, 'critic_hidden'),
    ({'actor_hidden': (64.0,)}, 'actor_hidden'),
    ({'critic_action_layer': 4}, 'critic_action_layer'),
    ({'critic_action_layer': -1}, 'critic_action_layer'),
    ({'activation': 'gelu'}, 'activation'),
    ({'final_init': 0.0}, 'final_init'),
    ({'final_init': float('nan')}, 'final_init'),
])
def test_bad_network_config_is_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        NetworkConfig(**changes)


def test_network_config_resolution_and_bad_dims():
    assert network_config('dcdrl') is PRESETS['dcdrl']
    assert network_config({'actor_hidden': [32, 32]}).actor_hidden == (32, 32)
    with pytest.raises(ValueError, match='unknown network preset'):
        network_config('huge')
    with pytest.raises(ValueError, match='unknown NetworkConfig fields'):
        network_config({'hidden': [3]})
    with pytest.raises(TypeError):
        network_config(3)
    with pytest.raises(ValueError, match='obs_dim'):
        Actor(PRESETS['cloud_edge'], 0, 1)
    with pytest.raises(ValueError, match='n_critics'):
        CriticEnsemble(PRESETS['cloud_edge'], 3, 1, n_critics=0)
    json.dumps(PRESETS['dcdrl'].to_dict())  # JSON-serialisable for checkpoints and configs
