"""Forward and backward passes of the actor and the critic ensemble written out by hand (no autograd).

Small MLPs on a CPU spend much of an update outside the matmuls: autograd builds a graph node per
op, accumulates every gradient into the `.grad` views with an extra add, and the buffers must be
zeroed first. Here the forward keeps the layer inputs, the backward issues the same matmuls autograd
would (x^T g for a weight, g W^T for an input, threshold_backward for relu) and writes each weight
gradient straight into its `.grad` view (`out=`), so the flat gradient buffer needs no zeroing.

Only plain MLPs take this path: relu or tanh hidden layers, no layer norm (`supported`); the agent
keeps autograd for the others. Results equal autograd's up to float rounding (the tests compare).
Call them under torch.no_grad(): the parameters require gradients, and no graph is wanted.
"""
from __future__ import annotations

from typing import cast

import torch

from .networks import Actor, CriticEnsemble, NetworkConfig

_ACTIVATIONS = ('relu', 'tanh')


def supported(config: NetworkConfig) -> bool:
    """True when the networks of `config` can use the hand-written passes."""
    return (config.activation in _ACTIVATIONS and not config.actor_layer_norm
            and not config.critic_layer_norm)


def _param(module: torch.nn.Module, name: str) -> torch.Tensor:
    return cast(torch.Tensor, module._parameters[name])


def _grad(module: torch.nn.Module, name: str) -> torch.Tensor:
    """The .grad view of a parameter (a slice of the agent's flat gradient buffer)."""
    return cast(torch.Tensor, _param(module, name).grad)


def _activate(x: torch.Tensor, activation: str) -> torch.Tensor:
    return torch.relu_(x) if activation == 'relu' else torch.tanh_(x)


def _activation_backward(grad: torch.Tensor, output: torch.Tensor, activation: str) -> torch.Tensor:
    """d loss / d pre-activation from d loss / d output, given the activation's output."""
    if activation == 'relu':
        return torch.ops.aten.threshold_backward(grad, output, 0)
    return grad * (1 - output * output)


def actor_forward_pre_tanh(actor: Actor, obs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """MLP(obs) [B, A] before the output tanh and the input of every layer; the last one is the
    features of the last hidden layer (SAC's log std head reads them)."""
    activation = actor.config.activation
    inputs, x = [], obs
    for i in range(actor.n_layers):
        inputs.append(x)
        x = torch.addmm(_param(actor, f'bias_{i}'), x, _param(actor, f'weight_{i}'))
        if i < actor.n_layers - 1:
            x = _activate(x, activation)
    return x, inputs


def actor_forward(actor: Actor, obs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """tanh(MLP(obs)) [B, A] and the input of every layer (for actor_backward)."""
    pre_tanh, inputs = actor_forward_pre_tanh(actor, obs)
    return torch.tanh_(pre_tanh), inputs


def actor_backward_pre_tanh(actor: Actor, inputs: list[torch.Tensor], grad_pre_tanh: torch.Tensor,
                            grad_features: torch.Tensor | None = None) -> None:
    """Writes d loss / d parameters into the actor's .grad views, given d loss / d MLP output [B, A]
    (before the tanh) and, optionally, a gradient reaching the last hidden features from elsewhere."""
    activation = actor.config.activation
    grad = grad_pre_tanh
    for i in reversed(range(actor.n_layers)):
        weight = _param(actor, f'weight_{i}')
        torch.mm(inputs[i].t(), grad, out=weight.grad)
        torch.sum(grad, 0, out=_grad(actor, f'bias_{i}'))
        if i > 0:
            grad_input = torch.mm(grad, weight.t())
            if i == actor.n_layers - 1 and grad_features is not None:
                grad_input += grad_features
            grad = _activation_backward(grad_input, inputs[i], activation)


def actor_backward(actor: Actor, inputs: list[torch.Tensor], action: torch.Tensor, grad_action: torch.Tensor) -> None:
    """Writes d loss / d parameters into the actor's .grad views, given d loss / d action [B, A]."""
    actor_backward_pre_tanh(actor, inputs, grad_action * (1 - action * action))   # through the output tanh


def critic_forward(critic: CriticEnsemble, obs: torch.Tensor, action: torch.Tensor,
                   members: int | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Q-values [n, B] of the first `members` critics (all by default) and every layer's input."""
    n = critic.n_critics if members is None else members
    cfg = critic.config
    inputs, x = [], obs
    for i in range(critic.n_layers):
        if i == cfg.critic_action_layer:
            x = torch.cat((x, action if i == 0 else action.unsqueeze(0).expand(n, -1, -1)), dim=-1)
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(n, -1, -1)
        inputs.append(x)
        weight, bias = _param(critic, f'weight_{i}'), _param(critic, f'bias_{i}')
        if n != critic.n_critics:
            weight, bias = weight[:n], bias[:n]
        x = torch.baddbmm(bias, x, weight)
        if i < critic.n_layers - 1:
            x = _activate(x, cfg.activation)
    return x.squeeze(-1), inputs


def critic_backward(critic: CriticEnsemble, inputs: list[torch.Tensor], grad_q: torch.Tensor,
                    weight_grads: bool = True, action_grad: bool = False) -> torch.Tensor | None:
    """Back-propagates d loss / d Q [n, B] through the first n critics.

    weight_grads: write d loss / d parameters into the critic's .grad views (needs all members);
    action_grad: return d loss / d action [B, A] summed over the members (the actor's loss).
    """
    if weight_grads and grad_q.shape[0] != critic.n_critics:
        raise ValueError(f'weight gradients need all {critic.n_critics} critics, got {grad_q.shape[0]}')
    n = grad_q.shape[0]
    cfg = critic.config
    lowest = cfg.critic_action_layer if action_grad else 0   # layers below it need no input gradient
    grad = grad_q.unsqueeze(-1)
    for i in reversed(range(critic.n_layers)):
        weight = _param(critic, f'weight_{i}') if n == critic.n_critics else _param(critic, f'weight_{i}')[:n]
        if weight_grads:
            torch.bmm(inputs[i].transpose(1, 2), grad, out=_grad(critic, f'weight_{i}'))
            torch.sum(grad, 1, keepdim=True, out=_grad(critic, f'bias_{i}'))
        if i == lowest and action_grad:
            grad_input = torch.bmm(grad, weight[:, -critic.action_dim:].transpose(1, 2))  # the action's columns
            return grad_input.sum(0)
        if i > lowest:
            grad_input, layer_input = torch.bmm(grad, weight.transpose(1, 2)), inputs[i]
            if i == cfg.critic_action_layer:   # the action's columns end here
                grad_input, layer_input = grad_input[..., :-critic.action_dim], layer_input[..., :-critic.action_dim]
            grad = _activation_backward(grad_input, layer_input, cfg.activation)
    return None


__all__ = ['supported', 'actor_forward', 'actor_forward_pre_tanh', 'actor_backward', 'actor_backward_pre_tanh',
           'critic_forward', 'critic_backward']
