"""Replaying a whole learner update as one CUDA graph.

On a GPU, an update of small networks is a few hundred short kernels, each launched from Python;
the launches, not the arithmetic, set the pace. A CUDA graph records the kernels of one update
once and replays them with a single launch. `GraphedStep(step)` wraps a function of tensors
(`step(*inputs, **flags) -> tuple of tensors`) with no host synchronisation in it: per flag
combination and batch size it runs eagerly `warmup` times (lazy initialisation such as Adam's
state happens outside the capture), then captures it, and from then on copies each call's inputs
into the captured input tensors and replays. The returned tensors are the graph's own outputs:
read (copy) them before the next call. `reset()` drops the graphs; call it whenever a tensor the
step reads or writes is replaced by a new one (loading an optimizer's state does that).
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import torch

Step = Callable[..., tuple[torch.Tensor, ...]]


class GraphedStep:
    """`step` captured as a CUDA graph per (flags, input shapes), replayed after `warmup` eager calls."""

    def __init__(self, step: Step, flag_names: tuple[str, ...], warmup: int = 1) -> None:
        if not torch.cuda.is_available():
            raise RuntimeError('CUDA graphs need CUDA, and torch.cuda.is_available() is False')
        self._step, self._flag_names, self._warmup = step, flag_names, warmup
        self._eager_runs: dict[Hashable, int] = {}
        self._graphs: dict[Hashable, tuple[Any, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]] = {}

    def run(self, flags: tuple[bool, ...], inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        key = (flags, tuple(tuple(t.shape) for t in inputs))
        kwargs = dict(zip(self._flag_names, flags))
        entry = self._graphs.get(key)
        if entry is None:
            if self._eager_runs.get(key, 0) < self._warmup:
                self._eager_runs[key] = self._eager_runs.get(key, 0) + 1
                return self._step(*inputs, **kwargs)
            static_inputs = tuple(t.clone() for t in inputs)
            graph = torch.cuda.CUDAGraph()
            torch.cuda.synchronize()
            with torch.cuda.graph(graph):   # records the kernels; nothing runs until replay
                static_outputs = self._step(*static_inputs, **kwargs)
            entry = self._graphs[key] = (graph, static_inputs, static_outputs)
        graph, static_inputs, static_outputs = entry
        for static, given in zip(static_inputs, inputs):
            static.copy_(given, non_blocking=True)
        graph.replay()
        return static_outputs

    def reset(self) -> None:
        """Forget the captured graphs (the next calls warm up and capture again)."""
        self._graphs.clear()
        self._eager_runs.clear()

    def __len__(self) -> int:
        return len(self._graphs)


__all__ = ['GraphedStep']
