"""Experience replay: ring storage, uniform / prioritised samplers, n-step writer, rate limiter.

The parts are small and separate (as in TorchRL's storage / sampler / writer split);
``ReplayBuffer`` combines them behind one thread-safe facade.  See docs/replay.md.
"""
from .buffer import ReplayBuffer, TransitionBatch
from .rate_limiter import RateLimiter, RateLimitTimeout
from .samplers import PrioritizedSampler, SumTree, UniformSampler
from .storage import RingStorage
from .writer import NStepWriter

__all__ = ['NStepWriter', 'PrioritizedSampler', 'RateLimitTimeout', 'RateLimiter', 'ReplayBuffer',
           'RingStorage', 'SumTree', 'TransitionBatch', 'UniformSampler']
