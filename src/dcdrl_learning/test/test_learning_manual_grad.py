"""The hand-written forward/backward passes against autograd: the same Q-values, actions and gradients
(weights of every critic, action gradient of Q1, actor weights), for relu and tanh nets with the action
entering the critic at its first, a middle and its last layer; and the agent choosing the path."""
import numpy as np
import pytest
import torch

from dcdrl_learning import manual_grad
from dcdrl_learning.agents import Agent, AgentConfig
from dcdrl_learning.networks import NetworkConfig, build_actor, build_critic

OBS, ACT, B = 5, 2, 16


def _grads(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize('activation', ['relu', 'tanh'])
@pytest.mark.parametrize('action_layer', [0, 1, 2])
@pytest.mark.parametrize('n_critics', [1, 2])
def test_critic_and_actor_gradients_equal_autograd(activation, action_layer, n_critics):
    config = NetworkConfig(actor_hidden=(16, 8), critic_hidden=(16, 8), critic_action_layer=action_layer,
                           activation=activation)
    actor, critic = build_actor(config, OBS, ACT, seed=0), build_critic(config, OBS, ACT, n_critics, seed=1)
    gen = torch.Generator().manual_seed(2)
    obs, action = torch.randn(B, OBS, generator=gen), torch.rand(B, ACT, generator=gen) * 2 - 1
    grad_q = torch.randn(n_critics, B, generator=gen)

    critic.zero_grad(set_to_none=False)
    (critic(obs, action) * grad_q).sum().backward()
    expected = _grads(critic)
    with torch.no_grad():
        q, inputs = manual_grad.critic_forward(critic, obs, action)
        manual_grad.critic_backward(critic, inputs, grad_q)
    torch.testing.assert_close(q, critic(obs, action))
    for got, want in zip(_grads(critic), expected):
        torch.testing.assert_close(got, want)

    # The actor's loss: d(sum Q1 * g)/d actor weights through the critic's action input.
    actor.zero_grad(set_to_none=False)
    pi = actor(obs)
    (critic(obs, pi, members=1) * grad_q[:1]).sum().backward(inputs=list(actor.parameters()))
    expected = _grads(actor)
    with torch.no_grad():
        pi_manual, actor_inputs = manual_grad.actor_forward(actor, obs)
        _, critic_inputs = manual_grad.critic_forward(critic, obs, pi_manual, members=1)
        grad_pi = manual_grad.critic_backward(critic, critic_inputs, grad_q[:1], weight_grads=False, action_grad=True)
        manual_grad.actor_backward(actor, actor_inputs, pi_manual, grad_pi)
    torch.testing.assert_close(pi_manual, pi.detach())
    for got, want in zip(_grads(actor), expected):
        torch.testing.assert_close(got, want)


def test_weight_gradients_need_every_member():
    critic = build_critic(NetworkConfig(critic_hidden=(8,)), OBS, ACT, 2, seed=0)
    with torch.no_grad():
        _, inputs = manual_grad.critic_forward(critic, torch.zeros(B, OBS), torch.zeros(B, ACT), members=1)
        with pytest.raises(ValueError, match='weight gradients need all 2 critics'):
            manual_grad.critic_backward(critic, inputs, torch.ones(1, B))


def test_agent_takes_the_manual_path_only_where_supported():
    def agent(**kw):
        return Agent(AgentConfig(critic_start=0, actor_start=0, device='cpu', **kw), OBS, ACT)
    assert agent()._manual
    assert not agent(update_impl='autograd')._manual
    assert not agent(network='dcdrl')._manual   # layer norm: autograd
    assert not agent(network=NetworkConfig(activation='elu'))._manual
    with pytest.raises(ValueError, match='update_impl'):
        agent(update_impl='jit')


@pytest.mark.parametrize('activation', ['relu', 'tanh'])
def test_sac_policy_gradients_equal_autograd(activation):
    # The SAC actor loss by hand (squashed Gaussian, log std head, min of the twin critics) against
    # autograd: same loss, log-probs and gradients of the actor and of the log std head.
    net = NetworkConfig(actor_hidden=(16, 8), critic_hidden=(16, 8), activation=activation)
    agents = [Agent(AgentConfig(algorithm='sac', network=net, critic_start=0, actor_start=0, device='cpu',
                                update_impl=impl), OBS, ACT) for impl in ('manual', 'autograd')]
    assert agents[0]._manual and not agents[1]._manual
    obs = torch.randn(B, OBS, generator=torch.Generator().manual_seed(3))
    alpha = torch.tensor(0.3)
    results = [a._policy_gradients(obs, alpha) for a in agents]
    for got, want in zip(*results):
        torch.testing.assert_close(got.detach(), want.detach())
    torch.testing.assert_close(agents[0]._actor_flat.grad, agents[1]._actor_flat.grad)
    torch.testing.assert_close(agents[0]._log_std_flat.grad, agents[1]._log_std_flat.grad)
    assert agents[0]._log_std_flat.grad.abs().sum() > 0 and agents[0]._actor_flat.grad.abs().sum() > 0


@pytest.mark.parametrize('algorithm', ['ddpg', 'td3', 'sac'])
def test_manual_and_autograd_agents_train_alike(algorithm):
    rng = np.random.default_rng(0)
    net = NetworkConfig(actor_hidden=(32, 16), critic_hidden=(32, 16))
    agents = [Agent(AgentConfig(algorithm=algorithm, network=net, critic_start=0, actor_start=0, device='cpu',
                                update_impl=impl), OBS, ACT) for impl in ('manual', 'autograd')]
    for _ in range(6):
        batch = type('Batch', (), {
            'obs': rng.standard_normal((B, OBS), dtype=np.float32),
            'actions': rng.uniform(-1, 1, (B, ACT)).astype(np.float32),
            'rewards': rng.standard_normal(B, dtype=np.float32),
            'next_obs': rng.standard_normal((B, OBS), dtype=np.float32),
            'discounts': np.full(B, 0.99, np.float32), 'weights': rng.uniform(0.5, 1, B).astype(np.float32)})()
        stats = [a.update(batch) for a in agents]
        np.testing.assert_allclose(stats[0]['td_errors'], stats[1]['td_errors'], rtol=1e-5, atol=1e-6)
        assert (stats[0]['actor_loss'] is None) == (stats[1]['actor_loss'] is None)
    states = [a.state_dict() for a in agents]
    for part in ('actor', 'critic') + (('log_std_head',) if algorithm == 'sac' else ()):
        for a, b in zip(states[0][part].values(), states[1][part].values()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    if algorithm == 'sac':
        torch.testing.assert_close(states[0]['log_alpha'], states[1]['log_alpha'])
