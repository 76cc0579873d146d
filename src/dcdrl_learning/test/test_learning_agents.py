"""DDPG/TD3 agent: critic targets, TD3 smoothing and delays, start thresholds, weights, exploration,
config validation, and a short Pendulum-v1 run that must improve the return."""
import numpy as np
import pytest
import torch

from dcdrl_learning.agents import AGENT_PRESETS, Agent, AgentConfig, make_agent
from dcdrl_learning.networks import PRESETS, NetworkConfig
from dcdrl_learning.noise import GaussianNoise, OrnsteinUhlenbeckNoise, make_noise
from dcdrl_learning.testing import FakeBatch, random_batch

SMALL = NetworkConfig(actor_hidden=(32, 32), critic_hidden=(32, 32))
OBS, ACT = 5, 2


def make_batch(rng: np.random.Generator, b: int = 16, discount: float = 0.99) -> FakeBatch:
    return random_batch(rng, b, OBS, ACT, discount)


def agent_for(algorithm: str = 'ddpg', **kw) -> Agent:
    base = dict(algorithm=algorithm, network=SMALL, critic_start=0, actor_start=0, device='cpu', seed=0)
    base.update(kw)
    return Agent(AgentConfig(**base), OBS, ACT)


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


# ---------------------------------------------------------------- critic target
def test_ddpg_critic_target_uses_batch_discounts_not_gamma():
    agent = agent_for('ddpg', gamma=0.5)
    batch = make_batch(np.random.default_rng(0))
    batch.discounts = np.array([0.0, 1.0, 0.9 ** 3] * 5 + [0.25], np.float32)  # terminated, 1-step, 3-step ...
    with torch.no_grad():
        next_q = agent.critic_target(torch.from_numpy(batch.next_obs),
                                     agent.actor_target(torch.from_numpy(batch.next_obs)))[0]
        q = agent.critic(torch.from_numpy(batch.obs), torch.from_numpy(batch.actions))[0]
    expected_target = torch.from_numpy(batch.rewards) + torch.from_numpy(batch.discounts) * next_q
    stats = agent.update(batch)
    np.testing.assert_allclose(stats['td_errors'], (q - expected_target).numpy(), rtol=1e-5, atol=1e-6)
    assert stats['td_errors'].dtype == np.float32 and stats['td_errors'].shape == (16,)
    assert stats['q_mean'] == pytest.approx(float(q.mean()), abs=1e-6)
    assert stats['critic_loss'] == pytest.approx(float(((q - expected_target) ** 2).mean()), rel=1e-5)


def test_importance_weights_scale_the_critic_loss():
    rng = np.random.default_rng(1)
    batch = make_batch(rng)
    agent = agent_for('ddpg')
    before = params(agent.critic)
    batch.weights = np.zeros(16, np.float32)
    stats = agent.update(batch)
    assert stats['critic_loss'] == 0.0
    assert same(before, params(agent.critic))  # zero weights: zero gradient, Adam moves nothing
    batch.weights = np.full(16, 2.0, np.float32)
    doubled = agent_for('ddpg').update(batch)['critic_loss']
    batch.weights = np.ones(16, np.float32)
    single = agent_for('ddpg').update(batch)['critic_loss']
    assert doubled == pytest.approx(2 * single, rel=1e-6)


# ---------------------------------------------------------------- TD3
def test_td3_defaults():
    cfg = AgentConfig(algorithm='td3')
    assert (cfg.n_critics, cfg.policy_delay, cfg.target_noise) == (2, 2, 0.2)
    ddpg = AgentConfig()
    assert (ddpg.n_critics, ddpg.policy_delay, ddpg.target_noise) == (1, 1, 0.0)
    assert ddpg.with_changes(algorithm='td3').n_critics == 2
    assert AgentConfig(algorithm='td3', policy_delay=3).policy_delay == 3


def test_td3_target_uses_min_of_twin_critics_and_clipped_smoothing_noise():
    agent = agent_for('td3', target_noise=5.0, target_noise_clip=0.3)  # huge noise: the clip must act
    batch = make_batch(np.random.default_rng(2))
    generator = torch.Generator().manual_seed(0)
    generator.set_state(agent._generator.get_state())
    with torch.no_grad():
        next_obs = torch.from_numpy(batch.next_obs)
        pi = agent.actor_target(next_obs)
        eps = (torch.randn(pi.shape, generator=generator) * 5.0).clamp(-0.3, 0.3)
        assert eps.abs().max() == pytest.approx(0.3)  # clipping happened
        smoothed = (pi + eps).clamp(-1, 1)
        both = agent.critic_target(next_obs, smoothed)
        target = torch.from_numpy(batch.rewards) + torch.from_numpy(batch.discounts) * torch.minimum(both[0], both[1])
        q1 = agent.critic(torch.from_numpy(batch.obs), torch.from_numpy(batch.actions))[0]
        # without smoothing the target would differ: the noise is really used
        plain = agent.critic_target(next_obs, pi).amin(0)
        assert not torch.allclose(plain, torch.minimum(both[0], both[1]))
    stats = agent.update(batch)
    np.testing.assert_allclose(stats['td_errors'], (q1 - target).numpy(), rtol=1e-5, atol=1e-6)


def test_td3_delays_actor_and_target_updates():
    agent = agent_for('td3', policy_delay=3)
    rng = np.random.default_rng(3)
    for step in range(1, 10):
        actor_before, actor_t_before = params(agent.actor), params(agent.actor_target)
        critic_t_before, critic_before = params(agent.critic_target), params(agent.critic)
        stats = agent.update(make_batch(rng))
        due = step % 3 == 0
        assert (stats['actor_loss'] is not None) == due
        assert same(actor_before, params(agent.actor)) != due
        assert same(actor_t_before, params(agent.actor_target)) != due
        assert same(critic_t_before, params(agent.critic_target)) != due
        assert not same(critic_before, params(agent.critic))  # the critic learns every step
    assert (agent.critic_updates, agent.actor_updates) == (9, 3)


def test_actor_start_threshold_counts_stored_transitions():
    agent = agent_for('ddpg', critic_start=100, actor_start=250)
    assert not agent.ready(99) and agent.ready(100)
    rng = np.random.default_rng(4)
    actor_before, critic_t_before = params(agent.actor), params(agent.critic_target)
    assert agent.update(make_batch(rng), stored_transitions=200)['actor_loss'] is None
    assert same(actor_before, params(agent.actor))
    assert not same(critic_t_before, params(agent.critic_target))  # critic target still tracks
    assert agent.update(make_batch(rng), stored_transitions=250)['actor_loss'] is not None
    assert not same(actor_before, params(agent.actor))
    assert agent.update(make_batch(rng))['actor_loss'] is not None  # None: no gate


def test_soft_update_is_polyak_average():
    agent = agent_for('ddpg', tau=0.25)
    target_before = params(agent.critic_target)
    agent.update(make_batch(np.random.default_rng(5)))
    for old, new, online in zip(target_before, params(agent.critic_target), params(agent.critic)):
        torch.testing.assert_close(new, old + 0.25 * (online - old))


def test_actor_loss_does_not_touch_critic_gradients_or_weights():
    agent = agent_for('ddpg')
    batch = make_batch(np.random.default_rng(6))
    agent.update(batch)
    # After the actor step the critic's grads are those of the critic loss (the actor loss adds nothing).
    critic_grads = [p.grad.clone() for p in agent.critic.parameters()]
    ref = agent_for('ddpg')
    ref.critic_optim.zero_grad()
    q = ref.critic(torch.from_numpy(batch.obs), torch.from_numpy(batch.actions))
    with torch.no_grad():
        nxt = torch.from_numpy(batch.next_obs)
        y = torch.from_numpy(batch.rewards) + 0.99 * ref.critic_target(nxt, ref.actor_target(nxt))[0]
    ((q[0] - y) ** 2).mean().backward()
    for got, want in zip(critic_grads, [p.grad for p in ref.critic.parameters()]):
        torch.testing.assert_close(got, want)


def test_update_refuses_bad_batches():
    agent = agent_for('ddpg')
    rng = np.random.default_rng(7)
    batch = make_batch(rng)
    batch.actions = batch.actions[:, :1]
    with pytest.raises(ValueError, match='actions'):
        agent.update(batch)
    batch = make_batch(rng)
    batch.rewards = batch.rewards[:-1]
    with pytest.raises(ValueError, match='rewards'):
        agent.update(batch)
    batch = make_batch(rng)
    batch.obs = batch.obs[:, :3]
    with pytest.raises(ValueError, match='obs'):
        agent.update(batch)


# ---------------------------------------------------------------- acting and weights
def test_act_deterministic_and_exploring():
    agent = agent_for('ddpg', exploration='gaussian', noise_sigma=0.5)
    obs = np.random.default_rng(8).standard_normal(OBS).astype(np.float32)
    a1, a2 = agent.act(obs), agent.act(obs)
    assert a1.shape == (ACT,) and a1.dtype == np.float32 and np.array_equal(a1, a2)
    with torch.no_grad():
        np.testing.assert_allclose(a1, agent.actor(torch.from_numpy(obs)).numpy(), atol=1e-7)
    noisy = agent.act(obs, explore=True)
    assert not np.array_equal(noisy, a1) and np.abs(noisy).max() <= 1.0
    batch_actions = agent.act(np.stack([obs] * 4), explore=True)  # a vector of 4 environments
    assert batch_actions.shape == (4, ACT) and len({tuple(r) for r in batch_actions}) == 4
    agent.reset_noise(1)
    with pytest.raises(ValueError, match='obs'):
        agent.act(np.zeros(OBS + 1))
    with pytest.raises(ValueError, match='NaN'):
        agent.act(np.full(OBS, np.nan))


def test_actor_state_round_trip_and_refusals():
    a, b = agent_for('ddpg', seed=1), agent_for('ddpg', seed=2)
    obs = np.ones(OBS, np.float32)
    assert not np.array_equal(a.act(obs), b.act(obs))
    b.load_actor_state(a.actor_state())
    assert np.array_equal(a.act(obs), b.act(obs))
    b.load_actor_state({k: v.numpy() for k, v in a.actor_state().items()})  # numpy arrays accepted
    state = a.actor_state()
    state['weight_0'] = state['weight_0'][:, :3]
    with pytest.raises(ValueError, match='shape'):
        b.load_actor_state(state)
    state = a.actor_state()
    state['bias_0'][0] = float('inf')
    with pytest.raises(ValueError, match='NaN or Inf'):
        b.load_actor_state(state)
    state = a.actor_state()
    del state['bias_1']
    with pytest.raises(ValueError, match='missing'):
        b.load_actor_state(state)
    b.sync_targets()
    assert same(params(b.actor), params(b.actor_target))


@pytest.mark.parametrize('algorithm', ['ddpg', 'td3'])
def test_critic_state_round_trip_targets_on_request_and_refusals(algorithm):
    a, b = agent_for(algorithm, seed=1), agent_for(algorithm, seed=2)
    target_before = params(b.critic_target)
    b.load_critic_state({k: v.numpy() for k, v in a.critic_state().items()})
    assert same(params(a.critic), params(b.critic))
    assert same(params(b.critic_target), target_before)        # the target stays unless asked
    b.load_critic_state(a.critic_state(), with_target=True)
    assert same(params(b.critic_target), params(a.critic))
    state = a.critic_state()
    name = next(iter(state))
    state[name] = state[name] * float('nan')
    with pytest.raises(ValueError, match='critic state .* NaN or Inf'):
        b.load_critic_state(state)
    with pytest.raises(ValueError, match='missing'):
        b.load_critic_state({})


# ---------------------------------------------------------------- noise
def test_noise_decay_half_life_and_floor():
    noise = GaussianNoise(3, sigma=1.0, scale=0.8, half_life=100, min_scale=0.1, seed=0)
    assert noise.current_scale() == pytest.approx(0.8)
    for _ in range(100):
        noise.sample()
    assert noise.current_scale() == pytest.approx(0.4)
    for _ in range(1000):
        noise.sample()
    assert noise.current_scale() == pytest.approx(0.1)
    constant = GaussianNoise(3, sigma=1.0, scale=0.3, seed=0)
    for _ in range(500):
        constant.sample()
    assert constant.current_scale() == 0.3


def test_ou_noise_is_correlated_seeded_and_resettable():
    a = OrnsteinUhlenbeckNoise(2, sigma=0.2, theta=0.15, seed=5)
    b = OrnsteinUhlenbeckNoise(2, sigma=0.2, theta=0.15, seed=5)
    xs = np.array([a.sample() for _ in range(3000)])
    assert np.array_equal(xs[:10], np.array([b.sample() for _ in range(10)]))
    lag1 = np.corrcoef(xs[:-1, 0], xs[1:, 0])[0, 1]
    assert lag1 > 0.7  # OU: x_{t+1} = 0.85 x_t + noise
    gauss = np.array([GaussianNoise(1, sigma=0.2, seed=5).sample() for _ in range(1)])
    assert gauss.shape == (1, 1)
    a.reset()
    assert np.all(a.x == 0.0)
    restored = OrnsteinUhlenbeckNoise(2, sigma=0.2, theta=0.15, seed=99)
    restored.load_state_dict(b.state_dict())
    assert np.array_equal(restored.sample(), b.sample())
    assert make_noise('none', 2, sigma=0.1) is None
    with pytest.raises(ValueError, match='unknown exploration noise'):
        make_noise('brown', 2, sigma=0.1)
    with pytest.raises(ValueError, match='sigma'):
        GaussianNoise(2, sigma=-1.0)
    with pytest.raises(ValueError, match='half_life'):
        GaussianNoise(2, sigma=1.0, half_life=0)


# ---------------------------------------------------------------- config
def test_presets_follow_the_seeds():
    dc = AgentConfig.preset('dcdrl')
    assert dc.network == PRESETS['dcdrl']
    assert (dc.actor_lr, dc.critic_lr, dc.gamma, dc.tau, dc.batch_size) == (1e-4, 1e-3, 0.9, 0.001, 64)
    assert (dc.critic_start, dc.exploration, dc.noise_sigma, dc.noise_scale) == (1000, 'ou', 0.2, 0.3)
    ce = AgentConfig.preset('cloud_edge')
    assert ce.network == PRESETS['cloud_edge']
    assert (ce.actor_lr, ce.critic_lr, ce.gamma, ce.tau, ce.batch_size) == (3e-4, 3e-4, 0.99, 0.005, 128)
    assert (ce.critic_start, ce.actor_start, ce.noise_sigma, ce.noise_theta) == (3500, 5000, 0.1, 0.15)
    assert AgentConfig.preset('cloud_edge', algorithm='td3').n_critics == 2
    assert set(AGENT_PRESETS) == {'dcdrl', 'cloud_edge'}
    assert AgentConfig.from_dict(dc.to_dict()) == dc
    assert make_agent('dcdrl', 73, 20, device='cpu').architecture_id.startswith('mlp-a400x300ln-tanh-o73-a20-')


@pytest.mark.parametrize('changes, match', [
    ({'algorithm': 'ppo'}, 'algorithm'),
    ({'actor_lr': 0}, 'actor_lr'),
    ({'critic_lr': float('nan')}, 'critic_lr'),
    ({'tau': 1.5}, 'tau'),
    ({'policy_delay': 0}, 'policy_delay'),
    ({'n_critics': 2.0}, 'n_critics'),
    ({'target_noise': -0.1}, 'target_noise'),
    ({'critic_start': -1}, 'critic_start'),
    ({'exploration': 'brown'}, 'exploration'),
    ({'noise_half_life': 0}, 'noise_half_life'),
    ({'gamma': 1.1}, 'gamma'),
    ({'n_step': 0}, 'n_step'),
    ({'optimizer_impl': 'sgd'}, 'optimizer_impl'),
    ({'network': 'huge'}, 'preset'),
    ({'max_grad_norm': 0}, 'max_grad_norm'),
])
def test_bad_agent_config_is_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        AgentConfig(**changes)


def test_bad_device_and_unknown_fields():
    with pytest.raises(ValueError, match='device'):
        Agent(AgentConfig(device='tpu', network=SMALL), OBS, ACT)
    with pytest.raises(ValueError, match='unknown AgentConfig fields'):
        AgentConfig.from_dict({'learning_rate': 1e-3})
    with pytest.raises(TypeError):
        Agent({'algorithm': 'ddpg'}, OBS, ACT)


@pytest.mark.parametrize('impl', ['foreach', 'default'])
def test_optimizer_implementations_agree(impl):
    batch = make_batch(np.random.default_rng(9))
    fused, other = agent_for('td3'), agent_for('td3', optimizer_impl=impl)
    for _ in range(3):
        fused.update(batch)
        other.update(batch)
    for x, y in zip(params(fused.actor) + params(fused.critic), params(other.actor) + params(other.critic)):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- learning end to end
def _evaluate(agent: Agent, episodes: int = 3) -> float:
    import gymnasium as gym
    env = gym.wrappers.RescaleAction(gym.make('Pendulum-v1'), -1.0, 1.0)
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=1000 + episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


@pytest.mark.filterwarnings('ignore::UserWarning')
def test_short_ddpg_run_on_pendulum_improves_return():
    """3000 steps of DDPG (small nets, 3-step returns through the replay's writer) on Pendulum-v1."""
    import gymnasium as gym

    from dcdrl_learning.replay import NStepWriter, ReplayBuffer
    torch.set_num_threads(1)
    cfg = AgentConfig(network=NetworkConfig(actor_hidden=(64, 64), critic_hidden=(64, 64)), actor_lr=1e-3,
                      critic_lr=1e-3, tau=0.01, critic_start=300, actor_start=300, batch_size=64,
                      exploration='gaussian', noise_sigma=0.2, noise_half_life=None, n_step=3, gamma=0.99,
                      device='cpu', seed=0)
    agent = Agent(cfg, 3, 1)
    untrained = _evaluate(agent)
    env = gym.wrappers.RescaleAction(gym.make('Pendulum-v1'), -1.0, 1.0)
    writer = NStepWriter(1, 3, 1, n_step=cfg.n_step, gamma=cfg.gamma)
    buffer = ReplayBuffer(10_000, 3, 1, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(3000):
        action = agent.act(obs, explore=True)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        # reward / 10: Pendulum's returns are large; scaled targets keep the small critic stable.
        out = writer.step(obs[None], action[None], np.array([reward / 10.0]), next_obs[None],
                          np.array([terminated]), np.array([truncated]))
        if len(out['rewards']):
            buffer.add(**out)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
            agent.reset_noise()
        if agent.ready(len(buffer)):
            stats = agent.update(buffer.sample(cfg.batch_size), stored_transitions=len(buffer))
            assert np.isfinite(stats['critic_loss'])
    trained = _evaluate(agent)
    assert trained > untrained + 300, (untrained, trained)


# ---------------------------------------------------------------- flat parameter buffers
def test_flat_parameters_stay_shared_through_updates_and_loads():
    agent = agent_for('td3')
    flat = agent._critic_flat
    for p in agent.critic.parameters():
        assert p.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr()
    agent.update(make_batch(np.random.default_rng(10)))
    flat_copy = flat.detach().clone()
    offset = 0
    for p in agent.critic.parameters():  # the module sees exactly what Adam wrote into the buffer
        assert torch.equal(p.detach().reshape(-1), flat_copy[offset:offset + p.numel()])
        offset += p.numel()
    other = agent_for('td3', seed=4)
    agent.load_actor_state(other.actor_state())  # load_state_dict copies into the views
    assert torch.equal(agent._actor_flat[:OBS * 32].detach(), other.actor.weight_0.detach().reshape(-1))
    agent.sync_targets()
    assert torch.equal(agent._actor_target_flat, agent._actor_flat.detach())


def test_max_grad_norm_clips_each_network():
    agent = agent_for('ddpg', max_grad_norm=1e-3)
    batch = make_batch(np.random.default_rng(11))
    batch.rewards *= 1000  # a huge critic gradient
    agent.update(batch)
    assert float(agent._critic_flat.grad.norm()) <= 1e-3 * (1 + 1e-4)
    assert float(agent._actor_flat.grad.norm()) <= 1e-3 * (1 + 1e-4)
