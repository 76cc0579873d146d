"""FlatAdam and adam_step: bit-identical to torch's fused Adam (one or two flat buffers, weight decay),
falling back to Adam.step where the direct call does not apply (first step, a closure, missing grads)."""
import pytest
import torch

from dcdrl_learning.flat_adam import FlatAdam, adam_step, fused_step, make_adam


def _params(count: int, seed: int) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(50 + 7 * i, generator=gen)) for i in range(count)]


@pytest.mark.parametrize('count, weight_decay', [(1, 0.0), (2, 0.0), (1, 1e-3)])
@pytest.mark.parametrize('stepper', ['step', 'adam_step'])
def test_same_results_as_torch_fused_adam(count, weight_decay, stepper):
    ours, theirs = _params(count, 0), _params(count, 0)
    optim = FlatAdam(ours, lr=1e-2, weight_decay=weight_decay, fused=True)
    reference = torch.optim.Adam(theirs, lr=1e-2, weight_decay=weight_decay, fused=True)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        for a, b in zip(ours, theirs):
            a.grad = torch.randn(a.shape, generator=gen)
            b.grad = a.grad.clone()
        optim.step() if stepper == 'step' else adam_step(optim)
        reference.step()
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
        for key in ('exp_avg', 'exp_avg_sq', 'step'):
            assert torch.equal(optim.state[a][key], reference.state[b][key])
    assert optim.state_dict()['state'].keys() == reference.state_dict()['state'].keys()


def test_falls_back_where_the_direct_call_does_not_apply():
    (param,) = _params(1, 0)
    optim = FlatAdam([param], lr=1e-2, fused=True)
    param.grad = torch.ones_like(param)
    assert not fused_step(optim)            # no state before the first step
    optim.step()
    assert fused_step(optim)
    assert optim.step(lambda: 1.0) == 1.0   # a closure goes through Adam.step
    param.grad = None
    assert not fused_step(optim)
    assert not fused_step(torch.optim.Adam([param], lr=1e-2, foreach=True))


def test_make_adam_kinds():
    assert type(make_adam(_params(1, 0), 1e-3, 1e-8, 0.0, 'fused')) is FlatAdam
    assert type(make_adam(_params(1, 0), 1e-3, 1e-8, 0.0, 'foreach')) is torch.optim.Adam
