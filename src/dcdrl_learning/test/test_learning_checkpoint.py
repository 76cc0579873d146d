"""Checkpoints: bit-identical continuation after resume, atomic writes, refusals, no pickle."""
import json
import os

import numpy as np
import pytest
import torch

from dcdrl_core import files
from dcdrl_learning.agents import Agent, AgentConfig
from dcdrl_learning.checkpoint import (
    flatten_state,
    load_checkpoint,
    load_state,
    save_checkpoint,
    save_state,
    unflatten_state,
)
from dcdrl_learning.networks import NetworkConfig
from dcdrl_learning.testing import FakeBatch, random_batch

SMALL = NetworkConfig(actor_hidden=(24, 16), critic_hidden=(24, 16), actor_layer_norm=True)
OBS, ACT = 4, 2


def batches(seed: int, count: int, b: int = 8) -> list[FakeBatch]:
    rng = np.random.default_rng(seed)
    return [random_batch(rng, b, OBS, ACT, discount=0.97, weights=(0.5, 1.5)) for _ in range(count)]


def make(algorithm: str, **kw) -> Agent:
    options = dict(algorithm=algorithm, network=SMALL, critic_start=0, actor_start=0, device='cpu', seed=11,
                   exploration='ou', noise_half_life=50)
    options.update(kw)
    return Agent(AgentConfig(**options), OBS, ACT)


def all_tensors(agent: Agent) -> list[torch.Tensor]:
    modules = (agent.actor, agent.critic, agent.actor_target, agent.critic_target)
    out = [t for m in modules for t in m.state_dict().values()]
    for opt in (agent.actor_optim, agent.critic_optim):
        for state in opt.state_dict()['state'].values():
            out.extend(state.values())
    return out


@pytest.mark.parametrize('algorithm', ['ddpg', 'td3'])
def test_resume_gives_bit_identical_next_updates(tmp_path, algorithm):
    data = batches(0, 8)
    original = make(algorithm)
    obs = np.zeros(OBS, np.float32)
    for b in data[:5]:
        original.update(b)
        original.act(obs, explore=True)
    path = tmp_path / 'agent.safetensors'
    save_checkpoint(path, original, version=42, extra={'env_steps': 1234})

    resumed, info = load_checkpoint(path)  # a new agent, built from the stored config
    assert info.version == 42 and info.extra == {'env_steps': 1234}
    assert info.architecture_id == original.architecture_id
    assert (resumed.critic_updates, resumed.actor_updates) == (original.critic_updates, original.actor_updates)
    for b in data[5:]:  # the next updates (TD3: including its smoothing noise draws and delays)
        s1, s2 = original.update(b), resumed.update(b)
        assert s1['critic_loss'] == s2['critic_loss'] and s1['actor_loss'] == s2['actor_loss']
        assert np.array_equal(s1['td_errors'], s2['td_errors'])
        assert np.array_equal(original.act(obs, explore=True), resumed.act(obs, explore=True))  # OU state + RNG
    for x, y in zip(all_tensors(original), all_tensors(resumed)):
        assert torch.equal(x, y)


def test_resume_into_an_existing_agent_and_refuse_other_architecture(tmp_path):
    original = make('ddpg')
    for b in batches(1, 3):
        original.update(b)
    path = tmp_path / 'a.safetensors'
    save_checkpoint(path, original, version=3)
    target = make('ddpg', seed=5)
    returned, info = load_checkpoint(path, target)
    assert returned is target and info.version == 3
    assert torch.equal(target.actor.weight_0, original.actor.weight_0)
    other = Agent(AgentConfig(network=NetworkConfig(actor_hidden=(8,), critic_hidden=(8,)), device='cpu'), OBS, ACT)
    with pytest.raises(ValueError, match='architecture'):
        load_checkpoint(path, other)


def test_file_is_safetensors_with_json_metadata(tmp_path):
    agent = make('td3')
    agent.update(batches(2, 1)[0])
    path = tmp_path / 'x.safetensors'
    save_checkpoint(path, agent, version=1)
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], 'little')
    header = json.loads(raw[8:8 + header_len])
    meta = json.loads(header['__metadata__']['dcdrl_checkpoint'])
    assert meta['format'] == 'dcdrl-checkpoint'
    assert meta['state']['version'] == 1
    assert meta['state']['agent']['counters'] == {'critic_updates': 1, 'actor_updates': 0}
    assert 'agent/actor/weight_0' in header and 'agent/critic_optim/state/0/exp_avg' in header
    assert 'agent/generator' in header
    assert [p.name for p in tmp_path.iterdir()] == ['x.safetensors']  # no temp file left behind


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / 'c.safetensors'
    save_state(path, {'value': torch.ones(3), 'n': 1})
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError('disk full')
    monkeypatch.setattr(files.os, 'replace', broken_replace)
    with pytest.raises(OSError, match='disk full'):
        save_state(path, {'value': torch.zeros(3), 'n': 2})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ['c.safetensors']


def test_nested_state_round_trip_keeps_types():
    state = {'a': torch.arange(6.0).reshape(2, 3), 'opt': {0: {'step': torch.tensor(3.0)}, 7: {}},
             'betas': (0.9, 0.999), 'lst': [1, None, 'x', True, 2.5], 'empty': {}}
    skeleton, tensors = flatten_state(state)
    json.dumps(skeleton)
    back = unflatten_state(json.loads(json.dumps(skeleton)), tensors)
    assert torch.equal(back['a'], state['a']) and back['betas'] == (0.9, 0.999)
    assert set(back['opt']) == {0, 7} and torch.equal(back['opt'][0]['step'], torch.tensor(3.0))
    assert back['lst'] == [1, None, 'x', True, 2.5] and back['empty'] == {}


def test_shared_storage_tensors_are_saved(tmp_path):
    base = torch.arange(10.0)
    save_state(tmp_path / 's.safetensors', {'x': base[:5], 'y': base[5:]})
    back = load_state(tmp_path / 's.safetensors')
    assert torch.equal(back['y'], torch.arange(5.0, 10.0))


def test_refusals(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_state(tmp_path / 'missing.safetensors')
    bad = tmp_path / 'bad.safetensors'
    bad.write_bytes(b'\x00' * 7)
    with pytest.raises(ValueError, match='not a readable safetensors'):
        load_state(bad)
    from safetensors.torch import save_file
    save_file({'x': torch.zeros(1)}, str(tmp_path / 'foreign.safetensors'))
    with pytest.raises(ValueError, match='not a dcdrl checkpoint'):
        load_state(tmp_path / 'foreign.safetensors')
    with pytest.raises(TypeError, match='cannot store'):
        save_state(tmp_path / 'obj.safetensors', {'x': object()})
    with pytest.raises(ValueError, match='reserved'):
        save_state(tmp_path / 'r.safetensors', {'__tensor__': 1})
    agent = make('ddpg')
    with pytest.raises(ValueError, match='version'):
        save_checkpoint(tmp_path / 'v.safetensors', agent, version=-1)
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / 'e.safetensors', agent, version=1, extra={'x': object()})
