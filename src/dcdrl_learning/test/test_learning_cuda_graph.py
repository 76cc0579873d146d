"""The CUDA-graph update (AgentConfig.cuda_graph): against the same agent on the cpu and eager on CUDA,
and a checkpoint resume with graphs. The GPU tests run only where CUDA is available; on a cpu-only
machine the option leaves the agent eager."""
import numpy as np
import pytest
import torch

from dcdrl_learning.agents import Agent, AgentConfig
from dcdrl_learning.cuda_graph import GraphedStep
from dcdrl_learning.testing import FakeBatch, random_batch

OBS, ACT, B = 12, 1, 64
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs CUDA (torch.cuda.is_available() is False): cpu-vs-cuda check of the '
                                       'CUDA-graph update')


def _batches(count: int) -> list[FakeBatch]:
    rng = np.random.default_rng(0)
    return [random_batch(rng, B, OBS, ACT, weights=(0.5, 1.0)) for _ in range(count)]


def _agent(algorithm: str, device: str, **kw) -> Agent:
    return Agent(AgentConfig(algorithm=algorithm, critic_start=0, actor_start=0, batch_size=B, device=device,
                             seed=0, **kw), OBS, ACT)


def _max_diff(a: Agent, b: Agent) -> float:
    pairs = zip(list(a.actor.parameters()) + list(a.critic.parameters()),
                list(b.actor.parameters()) + list(b.critic.parameters()))
    return max(float((x.detach().cpu().double() - y.detach().cpu().double()).abs().max()) for x, y in pairs)


def test_on_the_cpu_the_option_leaves_the_update_eager():
    agent = _agent('td3', 'cpu', cuda_graph=True)
    assert agent._graphs is None
    reference = _agent('td3', 'cpu')
    for batch in _batches(3):
        agent.update(batch)
        reference.update(batch)
    assert _max_diff(agent, reference) == 0.0
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match='CUDA graphs need CUDA'):
            GraphedStep(agent._step, ('actor_due', 'targets_due'))


@needs_cuda
@pytest.mark.parametrize('algorithm', ['ddpg', 'td3'])
def test_cuda_graph_update_matches_the_cpu(algorithm):
    # The smoothing noise comes from per-device generators (different streams): off for this comparison.
    cpu, gpu = _agent(algorithm, 'cpu', target_noise=0.0), _agent(algorithm, 'cuda', target_noise=0.0,
                                                                   cuda_graph=True)
    for batch in _batches(20):
        stats_cpu, stats_gpu = cpu.update(batch), gpu.update(batch)
        assert (stats_cpu['actor_loss'] is None) == (stats_gpu['actor_loss'] is None)
        np.testing.assert_allclose(stats_gpu['td_errors'], stats_cpu['td_errors'], rtol=1e-3, atol=1e-3)
    assert len(gpu._graphs) >= 2            # critic-only and critic+actor updates were captured and replayed
    assert _max_diff(cpu, gpu) < 1e-3


@needs_cuda
def test_cuda_graph_update_matches_eager_cuda_with_smoothing_noise():
    eager, graphed = _agent('td3', 'cuda'), _agent('td3', 'cuda', cuda_graph=True)
    for batch in _batches(12):
        a, b = eager.update(batch), graphed.update(batch)
        np.testing.assert_allclose(b['td_errors'], a['td_errors'], rtol=1e-5, atol=1e-5)
    assert _max_diff(eager, graphed) < 1e-5


@needs_cuda
def test_cuda_graph_resume_from_a_checkpoint_continues_identically():
    batches = _batches(16)
    straight = _agent('td3', 'cuda', cuda_graph=True)
    for batch in batches[:8]:
        straight.update(batch)
    resumed = _agent('td3', 'cuda', cuda_graph=True)
    for batch in batches[:3]:           # capture graphs first: loading must drop them (new Adam state tensors)
        resumed.update(batch)
    resumed.load_state_dict(straight.state_dict())
    for batch in batches[8:]:
        straight.update(batch)
        resumed.update(batch)
    assert _max_diff(straight, resumed) == 0.0
