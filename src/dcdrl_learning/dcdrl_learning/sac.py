"""Soft actor-critic (SAC) with automatic entropy temperature, as a subclass of the DDPG/TD3 Agent.

`Agent(AgentConfig(algorithm='sac'), ...)` builds a SacAgent; every caller of Agent (trainer, clients,
checkpoints, experiments) gets SAC without knowing about it.

The policy is a tanh-squashed Gaussian: u ~ N(mean(s), std(s)), a = tanh(u). Its mean is the ordinary
networks.Actor (same tensors, same layout) and the log std is one extra linear layer (`log_std_head`)
on the actor's last hidden features. So the published actor (`actor_state`, the weights message, the
edge's numpy actor) runs tanh(mean(s)), SAC's deterministic action, with nothing new on the edge;
merging SAC actors merges that deterministic part, each agent keeps its own log std head.

Read `update` top to bottom (batches as in agents.py; `discounts` already holds gamma**k or 0):
    critic target  y = r + discounts * (min_i Q'_i(s', a') - alpha * log pi(a'|s')),  a' ~ pi(s')
    critic loss    sum_i mean(w * (Q_i(s, a) - y)^2)
    actor loss     mean(alpha * log pi(a~|s) - min_i Q_i(s, a~)),  a~ ~ pi(s) (reparameterised)
    alpha loss     -mean(log_alpha * (log pi(a~|s) + target_entropy))   (automatic temperature)
Gradients: by hand where the nets allow (`update_impl='manual'`, relu/tanh without layer norm: the critic
through Agent._critic_gradients, the policy in `_policy_gradients` with manual_grad.py's passes), else autograd;
both give the same numbers to float rounding (test_learning_manual_grad.py).
The critic targets follow the online critics by `tau` after every actor step; SAC has no target actor
(the inherited `actor_target` is kept, so code that loads a merged actor into it still works, but is
never read here).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import manual_grad
from .agents import Agent, AgentConfig, Batch, flatten_parameters
from .flat_adam import adam_step, make_adam
from .noise import ExplorationNoise, PinkNoise

# The log std is squashed into this range (CleanRL's values): std from 0.007 to 7.4. It starts near 0 (std 1,
# as SB3's SAC): tanh(N(0, 1)) covers most of [-1, 1], a broad exploration before anything is learned.
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
INITIAL_LOG_STD = 0.0
_HALF_RANGE = 0.5 * (LOG_STD_MAX - LOG_STD_MIN)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def squashed_gaussian_log_prob(mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor
                               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(action, log_prob): a = tanh(mean + std * noise) and log pi(a) summed over the last dimension.

    log pi(a) = log N(u; mean, std) - sum log(1 - tanh(u)^2), the last term written as
    2 * (log 2 - u - softplus(-2u)), which stays finite where tanh(u) rounds to +-1.
    """
    pre_tanh = mean + log_std.exp() * noise
    gaussian = (-0.5 * noise.square() - log_std - _LOG_SQRT_2PI).sum(dim=-1)
    squash = (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(dim=-1)
    return torch.tanh(pre_tanh), gaussian - squash


def _grad(param: torch.Tensor) -> torch.Tensor:
    grad = param.grad
    assert grad is not None  # flatten_parameters allocates it once; parameters' .grad are views into it
    return grad


class LogStdHead(nn.Module):
    """features [.., H] -> log std [.., A] in [LOG_STD_MIN, LOG_STD_MAX] (weight [H, A] like the actor's)."""

    def __init__(self, in_size: int, action_dim: int, init: float) -> None:
        super().__init__()
        initial_raw = math.atanh((INITIAL_LOG_STD - LOG_STD_MIN) / _HALF_RANGE - 1.0)
        self.weight = nn.Parameter(torch.empty(in_size, action_dim).uniform_(-init, init))
        self.bias = nn.Parameter(torch.empty(action_dim).uniform_(-init, init).add_(initial_raw))

    def squashed(self, features: torch.Tensor) -> torch.Tensor:
        """tanh of the head's linear output, in [-1, 1]; log std = LOG_STD_MIN + _HALF_RANGE * (squashed + 1)."""
        return torch.tanh(features @ self.weight + self.bias)

    @staticmethod
    def log_std(squashed: torch.Tensor) -> torch.Tensor:
        """The log std from `squashed`'s output: [-1, 1] mapped onto [LOG_STD_MIN, LOG_STD_MAX]."""
        return LOG_STD_MIN + _HALF_RANGE * (squashed + 1.0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.log_std(self.squashed(features))


class SacAgent(Agent):
    """SAC: twin critics (the Agent's critic ensemble), squashed Gaussian actor, learned temperature.

    act(obs, explore=True) samples from the policy: u = mean + std * eps with white eps, or with pink eps
    (unit variance, correlated over time) when the config's exploration is 'pink'; the other exploration
    kinds are not used (SAC explores with its own entropy). explore=False returns tanh(mean).
    """

    def __init__(self, config: AgentConfig, obs_dim: int, action_dim: int) -> None:
        super().__init__(config, obs_dim, action_dim)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed + 4)
            head = LogStdHead(config.network.actor_hidden[-1], action_dim, config.network.final_init)
        self.log_std_head = head.to(self.device)
        self._log_std_flat = flatten_parameters(self.log_std_head)
        self._policy_params = self._actor_params + list(self.log_std_head.parameters())
        self.actor_optim = make_adam([self._actor_flat, self._log_std_flat], config.actor_lr, config.adam_eps,
                                      0.0, config.optimizer_impl)
        self.target_entropy = float(config.target_entropy_per_action * action_dim)
        self.log_alpha = torch.tensor(math.log(config.alpha), device=self.device, requires_grad=config.autotune_alpha)
        self.alpha_optim = make_adam([self.log_alpha], config.alpha_lr, config.adam_eps, 0.0, config.optimizer_impl)

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.detach().exp())

    def _make_noise(self, shape: tuple[int, ...], seed: int | None) -> ExplorationNoise | None:
        return PinkNoise(shape, sigma=1.0, seed=seed) if self.config.exploration == 'pink' else None

    def policy(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(action, log_prob) of one reparameterised sample per observation (differentiable); noise: the
        standard normal draws to use (default: white, from the agent's generator)."""
        features = self.actor.features(obs)
        mean = self.actor.pre_tanh(features)
        if noise is None:
            noise = torch.randn(mean.shape, generator=self._generator, device=self.device)
        return squashed_gaussian_log_prob(mean, self.log_std_head(features), noise)

    def act(self, obs: np.ndarray, explore: bool = False) -> np.ndarray:
        if not explore:
            return super().act(obs, False)
        obs_tensor = self._checked_obs(obs)
        noise = None
        if self.noise is not None:
            shape = tuple(obs_tensor.shape[:-1]) + (self.action_dim,)
            if self.noise.shape != shape:
                # A vector of environments: one sequence per environment, same RNG stream.
                old, self.noise = self.noise, PinkNoise(shape, sigma=1.0)
                self.noise.rng, self.noise.steps = old.rng, old.steps
                self.noise.reset()
            noise = torch.from_numpy(self.noise.sample()).to(self.device)
        with torch.inference_mode():
            return self.policy(obs_tensor, noise)[0].cpu().numpy()

    def update(self, batch: Batch, stored_transitions: int | None = None) -> dict[str, Any]:
        """One critic step, and a policy + temperature step when due; the statistics of Agent.update
        plus alpha (the temperature used in this update) and entropy (-mean log pi, None without an actor step)."""
        c = self.config
        obs, actions, rewards, next_obs, discounts, weights = self._batch_tensors(batch)
        alpha = self.log_alpha.detach().exp()

        with torch.no_grad():
            next_actions, next_log_prob = self.policy(next_obs)
            next_q = self.critic_target(next_obs, next_actions).amin(dim=0)
            target = torch.addcmul(rewards, discounts, next_q - alpha * next_log_prob)

        critic_loss, q, td = self._critic_gradients(obs, actions, target, weights)   # q: [n_critics, B]
        if c.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._critic_flat, c.max_grad_norm)
        adam_step(self.critic_optim)
        self.critic_updates += 1

        actor_loss = log_prob = None
        assert c.policy_delay is not None  # AgentConfig fills it in
        if self.critic_updates % c.policy_delay == 0:
            if stored_transitions is None or stored_transitions >= c.actor_start:
                actor_loss, log_prob = self._policy_gradients(obs, alpha)
                if c.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_([self._actor_flat, self._log_std_flat], c.max_grad_norm)
                adam_step(self.actor_optim)
                self.actor_updates += 1
                if c.autotune_alpha:
                    # alpha loss -mean(log_alpha * (log pi + target_entropy)): its gradient, written directly
                    self.log_alpha.grad = (log_prob.detach().mean() + self.target_entropy).neg_()
                    adam_step(self.alpha_optim)
            with torch.no_grad():
                self._critic_target_flat.lerp_(self._critic_flat, c.tau)

        scalars = [critic_loss.detach(), q[0].detach().mean(), alpha]
        if actor_loss is not None and log_prob is not None:
            scalars += [actor_loss.detach(), -log_prob.detach().mean()]
        host = torch.cat((torch.stack(scalars), td[0].detach())).cpu().numpy()
        n = len(scalars)
        return {
            'critic_loss': float(host[0]),
            'actor_loss': float(host[3]) if actor_loss is not None else None,
            'q_mean': float(host[1]),
            'alpha': float(host[2]),
            'entropy': float(host[4]) if actor_loss is not None else None,
            'td_errors': host[n:].astype(np.float32),
        }

    def _policy_gradients(self, obs: torch.Tensor, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Writes d actor_loss / d parameters into the .grad views of the actor and the log std head;
        returns (actor_loss, log pi(a~|s) [B]) with actor_loss = mean(alpha * log pi(a~|s) - min_i Q_i(s, a~))."""
        if not self._manual:
            new_actions, log_prob = self.policy(obs)
            actor_loss = (alpha * log_prob - self.critic(obs, new_actions).amin(dim=0)).mean()
            _grad(self._actor_flat).zero_()
            _grad(self._log_std_flat).zero_()
            actor_loss.backward(inputs=self._policy_params)
            return actor_loss, log_prob
        # The same loss by hand (manual_grad.py's passes; the backward overwrites every .grad element):
        # u = mean + std * eps, a = tanh(u); d log pi / d u = 2a (the squash term), d log pi / d log std = -1
        # (eps fixed: reparameterised); log std = LOG_STD_MIN + _HALF_RANGE * (tanh(raw) + 1).
        b, head = obs.shape[0], self.log_std_head
        with torch.no_grad():
            mean, inputs = manual_grad.actor_forward_pre_tanh(self.actor, obs)
            features = inputs[-1]
            squashed = head.squashed(features)
            log_std = head.log_std(squashed)
            noise = torch.randn(mean.shape, generator=self._generator, device=self.device)
            action, log_prob = squashed_gaussian_log_prob(mean, log_std, noise)
            q_pi, critic_inputs = manual_grad.critic_forward(self.critic, obs, action)
            q_min, lowest = q_pi.min(dim=0)
            actor_loss = (alpha * log_prob - q_min).mean()
            grad_q = torch.zeros_like(q_pi).scatter_(0, lowest.unsqueeze(0), -1.0 / b)
            grad_action = manual_grad.critic_backward(self.critic, critic_inputs, grad_q, weight_grads=False,
                                                      action_grad=True)
            assert grad_action is not None
            scaled_alpha = alpha / b
            grad_u = torch.addcmul(grad_action * (1.0 - action * action), action, scaled_alpha * 2.0)
            grad_log_std = grad_u * log_std.exp() * noise - scaled_alpha
            grad_raw = grad_log_std * (_HALF_RANGE * (1.0 - squashed * squashed))
            torch.mm(features.t(), grad_raw, out=_grad(head.weight))
            torch.sum(grad_raw, 0, out=_grad(head.bias))
            manual_grad.actor_backward_pre_tanh(self.actor, inputs, grad_u, grad_features=grad_raw @ head.weight.t())
        return actor_loss, log_prob

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state['log_std_head'] = self.log_std_head.state_dict()
        state['log_alpha'] = self.log_alpha.detach().clone()
        state['alpha_optim'] = self.alpha_optim.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.log_std_head.load_state_dict(state['log_std_head'])
        with torch.no_grad():
            self.log_alpha.copy_(torch.as_tensor(state['log_alpha']))
        self.alpha_optim.load_state_dict(state['alpha_optim'])


__all__ = ['INITIAL_LOG_STD', 'LOG_STD_MAX', 'LOG_STD_MIN', 'LogStdHead', 'SacAgent', 'squashed_gaussian_log_prob']
