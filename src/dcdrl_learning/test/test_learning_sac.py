"""SAC: the critic target and temperature step on hand-made batches, the squashed Gaussian's log-prob,
bit-identical resume, the edge's numpy actor, merging, and a learning smoke that fails if a sign is wrong."""
import json
import math

import numpy as np
import pytest
import torch

from dcdrl_learning.agents import Agent, AgentConfig, make_agent
from dcdrl_learning.checkpoint import load_checkpoint, save_checkpoint
from dcdrl_learning.codec import encode_weights
from dcdrl_learning.inference import NumpyActor
from dcdrl_learning.merge import merge_models
from dcdrl_learning.networks import NetworkConfig
from dcdrl_learning.noise import PINK_SEQUENCE_STEPS, make_noise
from dcdrl_learning.sac import LOG_STD_MAX, LOG_STD_MIN, SacAgent, squashed_gaussian_log_prob
from dcdrl_learning.testing import FakeBatch, random_batch

SMALL = NetworkConfig(actor_hidden=(16, 8), critic_hidden=(16, 8))


@pytest.fixture(autouse=True, scope='module')
def one_torch_thread():
    """Small networks on a shared 2-core machine: two threads contend and run 25x slower (measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def sac_batch(rng: np.random.Generator, b: int, obs_dim: int, action_dim: int) -> FakeBatch:
    return random_batch(rng, b, obs_dim, action_dim, discount=0.9)


def make(obs_dim: int = 3, action_dim: int = 2, **kw) -> SacAgent:
    options = dict(algorithm='sac', network=SMALL, critic_start=0, actor_start=0, device='cpu', seed=3)
    options.update(kw)
    agent = Agent(AgentConfig(**options), obs_dim, action_dim)
    assert isinstance(agent, SacAgent)
    return agent


def handmade(agent: SacAgent, mean: float, log_std_raw: float, target_q: tuple[float, float]) -> None:
    """A policy whose mean and log std do not depend on the observation, target critics that return constants."""
    with torch.no_grad():
        last = agent.actor.n_layers - 1
        getattr(agent.actor, f'weight_{last}').zero_()
        getattr(agent.actor, f'bias_{last}').fill_(mean)
        agent.log_std_head.weight.zero_()
        agent.log_std_head.bias.fill_(log_std_raw)
        last = agent.critic_target.n_layers - 1
        getattr(agent.critic_target, f'weight_{last}').zero_()
        bias = getattr(agent.critic_target, f'bias_{last}')
        for member, value in enumerate(target_q):
            bias[member].fill_(value)


def log_prob_by_hand(mean: float, log_std: float, noise: np.ndarray) -> np.ndarray:
    """log N(u; mean, std) - log(1 - tanh(u)^2), summed over actions, in float64 the textbook way."""
    std = math.exp(log_std)
    u = mean + std * noise
    gaussian = -0.5 * ((u - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
    return (gaussian - np.log(1 - np.tanh(u) ** 2)).sum(axis=-1)


def test_algorithm_sac_builds_a_sac_agent_with_twin_critics():
    agent = make_agent(None, 3, 2, algorithm='sac', device='cpu')
    assert isinstance(agent, SacAgent) and agent.config.n_critics == 2 and agent.config.policy_delay == 1
    assert agent.noise is None and agent.target_entropy == -2.0
    assert make(target_entropy_per_action=-0.5).target_entropy == -1.0
    assert type(make_agent(AgentConfig(algorithm='sac'), 3, 2, algorithm='td3')) is Agent
    assert AgentConfig(algorithm='td3').with_changes(algorithm='sac').target_noise == 0.0
    with pytest.raises(ValueError, match='alpha'):
        AgentConfig(algorithm='sac', alpha=0.0)


def test_critic_target_is_min_of_twin_target_qs_minus_alpha_log_prob_discounted():
    agent = make(alpha=0.5)
    mean, raw = 0.3, 0.2
    log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (math.tanh(raw) + 1)
    handmade(agent, mean, raw, target_q=(1.0, -0.25))
    batch = sac_batch(np.random.default_rng(0), 4, 3, 2)
    batch.discounts = np.array([0.9, 0.0, 0.81, 0.9], np.float32)
    noise = torch.randn((4, 2), generator=agent._generator.clone_state()).double().numpy()
    q1_before = agent.critic(torch.from_numpy(batch.obs), torch.from_numpy(batch.actions))[0].detach().numpy()

    stats = agent.update(batch)

    target = batch.rewards + batch.discounts * (-0.25 - 0.5 * log_prob_by_hand(mean, log_std, noise))
    np.testing.assert_allclose(stats['td_errors'], q1_before - target, rtol=1e-5, atol=1e-5)
    assert stats['alpha'] == pytest.approx(0.5)


@pytest.mark.parametrize('raw, rises', [(-3.0, True), (0.46, False)])
def test_temperature_step_follows_the_entropy_gap(raw, rises):
    """Adam's first step moves log alpha by lr * g / (|g| + eps), g = -(mean log pi + target entropy):
    up when the policy is narrower than the target entropy (std 0.007), down when it is wider (std 1)."""
    agent = make(alpha=0.2, alpha_lr=0.01)
    mean = -0.1
    log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (math.tanh(raw) + 1)
    handmade(agent, mean, raw, target_q=(0.0, 0.0))
    batch = sac_batch(np.random.default_rng(1), 5, 3, 2)
    generator = agent._generator.clone_state()
    torch.randn((5, 2), generator=generator)        # the critic target's sample comes first
    noise = torch.randn((5, 2), generator=generator).double().numpy()

    stats = agent.update(batch)

    g = -(log_prob_by_hand(mean, log_std, noise).mean() + agent.target_entropy)
    expected = math.log(0.2) - 0.01 * g / (abs(g) + agent.config.adam_eps)
    assert agent.log_alpha.item() == pytest.approx(expected, abs=1e-6)
    assert (agent.alpha > 0.2) == rises
    assert stats['entropy'] == pytest.approx(-log_prob_by_hand(mean, log_std, noise).mean(), rel=1e-4)


def test_fixed_temperature_stays():
    agent = make(alpha=0.3, autotune_alpha=False)
    agent.update(sac_batch(np.random.default_rng(2), 8, 3, 2))
    assert agent.alpha == pytest.approx(0.3)


def test_log_prob_matches_the_probability_of_a_small_interval():
    """P(a in [a0 - h, a0 + h]) from the Gaussian's CDF through atanh, against 2h * exp(log pi(a0)), per dimension;
    two dimensions are independent, so their log-probs add."""
    mean, log_std, h = 0.4, -0.7, 1e-5
    std = math.exp(log_std)

    def cdf(a: float) -> float:
        return 0.5 * (1 + math.erf((math.atanh(a) - mean) / (std * math.sqrt(2))))

    targets = (-0.95, -0.3, 0.0, 0.5, 0.99)
    noise = torch.tensor([[(math.atanh(a) - mean) / std] for a in targets], dtype=torch.float64)
    actions, log_prob = squashed_gaussian_log_prob(torch.full_like(noise, mean), torch.full_like(noise, log_std),
                                                   noise)
    np.testing.assert_allclose(actions[:, 0].numpy(), targets, atol=1e-12)
    numeric = [math.log((cdf(a + h) - cdf(a - h)) / (2 * h)) for a in targets]
    np.testing.assert_allclose(log_prob.numpy(), numeric, atol=1e-4)
    pair = torch.cat((noise[:2], noise[2:4]), dim=1)
    _, joint = squashed_gaussian_log_prob(torch.full_like(pair, mean), torch.full_like(pair, log_std), pair)
    np.testing.assert_allclose(joint.numpy(), [numeric[0] + numeric[2], numeric[1] + numeric[3]], atol=2e-4)


def test_log_prob_stays_finite_where_tanh_saturates():
    _, log_prob = squashed_gaussian_log_prob(torch.tensor([[30.0]]), torch.tensor([[-5.0]]), torch.tensor([[0.0]]))
    assert torch.isfinite(log_prob).all()


@pytest.mark.parametrize('exploration', ['ou', 'pink'])   # 'ou' is not SAC's: white samples
def test_resume_gives_bit_identical_next_updates_and_samples(tmp_path, exploration):
    rng = np.random.default_rng(3)
    data = [random_batch(rng, 8, 3, 2) for _ in range(8)]
    obs = np.zeros(3, np.float32)
    original = make(actor_start=0, exploration=exploration)
    assert (original.noise is None) == (exploration == 'ou')
    for b in data[:5]:
        original.update(b)
        original.act(obs, explore=True)
    original.reset_noise()
    path = tmp_path / 'sac.safetensors'
    save_checkpoint(path, original, version=7)

    resumed, info = load_checkpoint(path)
    assert isinstance(resumed, SacAgent) and info.version == 7
    for b in data[5:]:
        s1, s2 = original.update(b), resumed.update(b)
        assert (s1['critic_loss'], s1['actor_loss'], s1['alpha']) == (s2['critic_loss'], s2['actor_loss'], s2['alpha'])
        assert np.array_equal(s1['td_errors'], s2['td_errors'])
        assert np.array_equal(original.act(obs, explore=True), resumed.act(obs, explore=True))
    for x, y in zip(original.state_dict().values(), resumed.state_dict().values()):
        if isinstance(x, dict) and x and all(isinstance(v, torch.Tensor) for v in x.values()):
            assert all(torch.equal(x[k], y[k]) for k in x)
    assert torch.equal(original.log_alpha, resumed.log_alpha)
    assert torch.equal(original.alpha_optim.state_dict()['state'][0]['exp_avg'],
                       resumed.alpha_optim.state_dict()['state'][0]['exp_avg'])


def test_pink_noise_has_the_sigma_asked_for_lasts_is_seeded_resettable_and_restorable():
    noise = make_noise('pink', (3, 2), sigma=0.5, seed=1)
    samples = np.array([noise.sample() for _ in range(PINK_SEQUENCE_STEPS + 5)])   # one sequence used up
    assert samples.shape == (PINK_SEQUENCE_STEPS + 5, 3, 2)
    assert samples[:PINK_SEQUENCE_STEPS].std(axis=0) == pytest.approx(np.full((3, 2), 0.5))
    twin = make_noise('pink', (3, 2), sigma=0.5, seed=1)
    assert np.array_equal(samples[:10], np.array([twin.sample() for _ in range(10)]))
    noise.reset(1)
    assert noise.positions.tolist() == [5, 0, 5]
    restored = make_noise('pink', (3, 2), sigma=0.5, seed=9)
    restored.load_state_dict(json.loads(json.dumps(noise.state_dict())))
    assert np.array_equal(restored.sample(), noise.sample())


def test_pink_exploration_is_the_squashed_mean_plus_std_times_the_pink_sequence():
    agent = make(obs_dim=3, action_dim=1, exploration='pink')
    sequence = agent.noise.sequences[0, 0].copy()
    expected_noise = sequence[:50]
    obs = np.ones(3, np.float32)
    actions = np.array([agent.act(obs, explore=True)[0] for _ in range(50)])
    with torch.no_grad():
        features = agent.actor.features(torch.from_numpy(obs))
        mean, std = agent.actor.pre_tanh(features).item(), agent.log_std_head(features).exp().item()
    np.testing.assert_allclose(actions, np.tanh(mean + std * expected_noise), atol=1e-5)
    assert np.corrcoef(sequence[:-5], sequence[5:])[0, 1] > 0.2   # pushes that last (white: 0 +- 0.03)
    assert agent.act(np.ones((4, 3), np.float32), explore=True).shape == (4, 1)   # a vector of environments


def test_edge_numpy_actor_runs_the_deterministic_mean():
    agent = make(obs_dim=5, action_dim=3)
    rng = np.random.default_rng(4)
    for _ in range(3):
        agent.update(random_batch(rng, 16, 5, 3))
    payload = encode_weights(agent.actor, agent.architecture_id, version=1)
    edge = NumpyActor.from_payload(payload, agent.config.network, 5, 3)
    obs = rng.standard_normal((6, 5), dtype=np.float32)
    expected = agent.act(obs)
    np.testing.assert_allclose(edge(obs), expected, atol=1e-5)
    np.testing.assert_allclose(edge(obs[0]), expected[0], atol=1e-5)
    with torch.no_grad():
        mean = agent.actor.pre_tanh(agent.actor.features(torch.from_numpy(obs)))
    np.testing.assert_allclose(expected, torch.tanh(mean).numpy(), atol=1e-6)


def test_merged_sac_actors_load_and_run():
    agents = [make(seed=s) for s in (1, 2)]
    models = [{k: v.numpy() for k, v in a.actor_state().items()} for a in agents]
    merged = merge_models(models, [-1.0, -2.0])
    agents[0].load_actor_state(merged)
    edge = NumpyActor(agents[0].config.network, 3, 2, merged)
    obs = np.ones(3, np.float32)
    np.testing.assert_allclose(agents[0].act(obs), edge(obs), atol=1e-5)
    agents[0].update(sac_batch(np.random.default_rng(5), 8, 3, 2))   # the log std head still trains with it


def test_learns_a_one_step_task():
    """Reward -(a - a*(s))^2 with a*(s) = 0.5 s + 0.2 and no bootstrapping: the deterministic action must approach
    a*(s); a wrong sign in the actor loss drives it to the bounds instead."""
    torch.manual_seed(0)
    agent = make(obs_dim=1, action_dim=1, actor_lr=3e-3, critic_lr=3e-3, tau=0.05, seed=0)
    rng = np.random.default_rng(6)
    obs_test = np.linspace(-1, 1, 21, dtype=np.float32)[:, None]
    best = 0.5 * obs_test[:, 0] + 0.2
    start_error = np.abs(agent.act(obs_test)[:, 0] - best).mean()
    for _ in range(400):
        obs = rng.uniform(-1, 1, (64, 1)).astype(np.float32)
        actions = agent.act(obs, explore=True)
        rewards = -np.square(actions[:, 0] - (0.5 * obs[:, 0] + 0.2))
        agent.update(FakeBatch(obs, actions, rewards.astype(np.float32), obs, np.zeros(64, np.float32),
                           np.ones(64, np.float32)))
    error = np.abs(agent.act(obs_test)[:, 0] - best).mean()
    assert start_error > 0.2 and error < 0.08, (start_error, error)
