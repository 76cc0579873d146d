"""Collective model merging for DC-DRL (neuroevolution over client models), corrected.

A *model* is a ``dict[str, np.ndarray]`` of named float32 tensors (a state dict as numpy).
Higher fitness is better (fitness = mean test-episode return, usually negative in MEC).

What the original did and why it is wrong: the parameter server averaged the models whose
fitness was at least the mean, weighted by the raw fitness.  With negative returns (costs)
the weights are negative and the *worse* model (more negative fitness) gets the larger
absolute weight, e.g. fitness -10 and -40 give weights 0.2 and 0.8.  Here the weights come
from the *order* (rank) or from a shift-invariant softmax of the fitness, so the better model
always weighs more, whatever the sign or offset of the fitness.

Everything here is a pure function (or, for ``GenerationCollector``, a state machine that is
told the time by its caller); nothing reads clocks, sockets or global random state.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np

Model = dict[str, np.ndarray]

METHODS = ('rank', 'softmax')


# ---------------------------------------------------------------------------------------------
# weights and merging
# ---------------------------------------------------------------------------------------------

def _fitness_array(fitnesses: Iterable[float]) -> np.ndarray:
    try:
        f = np.asarray(list(fitnesses), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError('fitnesses must be a sequence of real numbers') from None
    if f.ndim != 1 or f.size == 0:
        raise ValueError(f'fitnesses must be a non-empty 1-D sequence, got shape {f.shape}')
    if not np.isfinite(f).all():
        raise ValueError(f'fitnesses must be finite, got {f.tolist()}')
    return f


def elite_mask(fitnesses: Iterable[float], elite_fraction: float | None = None) -> np.ndarray:
    """Which models take part in the merge.

    ``elite_fraction=None`` keeps the paper's rule: every model whose fitness is at least the
    mean (never empty: the best is always >= the mean).  A number in (0, 1] keeps the best
    ``ceil(elite_fraction * N)`` models, plus any tied with the last one kept (so the result
    does not depend on the order of submissions).
    """
    f = _fitness_array(fitnesses)
    if elite_fraction is None:
        # Tolerance so that all-equal fitnesses (mean computed with rounding) all qualify.
        return f >= f.mean() - 1e-12 * max(1.0, float(np.abs(f).max()))
    if not (isinstance(elite_fraction, (int, float)) and 0.0 < elite_fraction <= 1.0):
        raise ValueError(f'elite_fraction must lie in (0, 1] or be None, got {elite_fraction!r}')
    keep = max(1, math.ceil(elite_fraction * f.size - 1e-9))
    cutoff = np.sort(f)[::-1][keep - 1]
    return f >= cutoff


def merge_weights(fitnesses: Iterable[float], method: str = 'rank', temperature: float = 1.0,
                  elite_fraction: float | None = None) -> np.ndarray:
    """Merge weight of each model (float64, sums to 1, 0 for models outside the elite).

    Methods (both depend only on the order or the differences of fitness, never on its sign):

    * ``"rank"`` (default): among the m elite models the best gets weight m, the next m-1,
      ..., the worst 1 (tied fitnesses share the mean of their rank weights), normalised.
    * ``"softmax"``: ``w_i ~ exp((f_i - max f) / (temperature * s))`` over the elite, where s
      is the standard deviation of the elite's fitness (scale-free: the same temperature
      works for returns of -5 or -5000).  All-equal fitness gives equal weights.  A smaller
      temperature concentrates the weight on the best model.  Default temperature 1.0.
    """
    f = _fitness_array(fitnesses)
    if method not in METHODS:
        raise ValueError(f'method must be one of {METHODS}, got {method!r}')
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f'temperature must be a finite number > 0, got {temperature!r}')
    elite = elite_mask(f, elite_fraction)
    fe = f[elite]
    if method == 'rank':
        order = np.argsort(-fe, kind='stable')
        rank_weight = np.empty(fe.size, dtype=np.float64)
        rank_weight[order] = np.arange(fe.size, 0, -1, dtype=np.float64)
        for value in np.unique(fe):  # ties share their mean rank weight
            tied = fe == value
            if tied.sum() > 1:
                rank_weight[tied] = rank_weight[tied].mean()
        we = rank_weight
    else:
        spread = float(fe.std())
        if fe.size == 1 or spread == 0.0:
            we = np.ones(fe.size)
        else:
            we = np.exp((fe - fe.max()) / (temperature * spread))
    weights = np.zeros(f.size, dtype=np.float64)
    weights[elite] = we / we.sum()
    return weights


def _check_models(models: Sequence[Mapping[str, np.ndarray]]) -> list[str]:
    if len(models) == 0:
        raise ValueError('need at least one model to merge')
    keys = sorted(models[0].keys())
    if not keys:
        raise ValueError('models must hold at least one tensor')
    for i, model in enumerate(models):
        if sorted(model.keys()) != keys:
            missing = set(keys) - set(model.keys())
            extra = set(model.keys()) - set(keys)
            raise ValueError(f'model {i} has different tensor names than model 0 '
                             f'(missing {sorted(missing)}, extra {sorted(extra)})')
        for key in keys:
            t = np.asarray(model[key])
            if t.dtype.kind != 'f':
                raise TypeError(f'model {i} tensor {key!r} must be floating point, got dtype {t.dtype}')
            if t.shape != np.shape(models[0][key]):
                raise ValueError(f'model {i} tensor {key!r} has shape {list(t.shape)}, '
                                 f'model 0 has {list(np.shape(models[0][key]))}')
            if not np.isfinite(t).all():
                raise ValueError(f'model {i} tensor {key!r} contains NaN or infinite values')
    return keys


def average_models(models: Sequence[Mapping[str, np.ndarray]], weights: Sequence[float] | np.ndarray) -> Model:
    """Weighted average of models (weights are used as given; they should sum to 1)."""
    keys = _check_models(models)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(models),) or not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f'weights must be {len(models)} finite non-negative numbers, got {w.tolist()}')
    used = [i for i in range(len(models)) if w[i] > 0]
    if not used:
        raise ValueError('at least one weight must be > 0')
    out: Model = {}
    for key in keys:
        acc = np.zeros(np.shape(models[0][key]), dtype=np.float64)
        for i in used:
            acc += w[i] * np.asarray(models[i][key], dtype=np.float64)
        out[key] = acc.astype(np.float32)
    return out


def merge_models(models: Sequence[Mapping[str, np.ndarray]], fitnesses: Iterable[float], *,
                 method: str = 'rank', temperature: float = 1.0,
                 elite_fraction: float | None = None) -> Model:
    """Merge the elite of ``models`` with ``merge_weights``; returns a new float32 model."""
    f = _fitness_array(fitnesses)
    if f.size != len(models):
        raise ValueError(f'got {len(models)} models but {f.size} fitness values')
    return average_models(models, merge_weights(f, method, temperature, elite_fraction))


def mutate(model: Mapping[str, np.ndarray], scale: float, rng: np.random.Generator, *,
           min_std: float = 1e-3) -> Model:
    """Return a copy of ``model`` with Gaussian noise added to every tensor.

    Per tensor t: ``t + N(0, 1) * scale * max(std(t), min_std)``.  Why per-tensor std: layers
    differ in scale by orders of magnitude (a LayerNorm gain near 1, output weights near
    1e-3); one global sigma would wreck the small ones or leave the large ones untouched.
    ``min_std`` (default 1e-3) lets tensors with no spread (zero-initialised biases, scalars)
    still move.  ``scale`` 0 returns an exact copy.
    """
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale >= 0):
        raise ValueError(f'scale must be a finite number >= 0, got {scale!r}')
    if not (isinstance(min_std, (int, float)) and math.isfinite(min_std) and min_std >= 0):
        raise ValueError(f'min_std must be a finite number >= 0, got {min_std!r}')
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f'rng must be a numpy.random.Generator, got {type(rng).__name__}')
    _check_models([model])
    out: Model = {}
    for key in sorted(model):
        t = np.asarray(model[key], dtype=np.float32)
        sigma = scale * max(float(t.std()), min_std)
        noise = rng.standard_normal(t.shape, dtype=np.float32) * np.float32(sigma)
        out[key] = (t + noise).astype(np.float32)
    return out


def should_pull(own_fitness: float, merged_fitness: float, margin: float = 0.0) -> bool:
    """True when a client should replace its model by the merged one.

    The client pulls when the merged model is better than its own by more than ``margin``
    (higher fitness is better; default margin 0 = strictly better).
    """
    for name, value in (('own_fitness', own_fitness), ('merged_fitness', merged_fitness), ('margin', margin)):
        if not (isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value)):
            raise ValueError(f'{name} must be a finite number, got {value!r}')
    if margin < 0:
        raise ValueError(f'margin must be >= 0, got {margin}')
    return float(merged_fitness) > float(own_fitness) + float(margin)


# ---------------------------------------------------------------------------------------------
# generations
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Submission:
    """One client's model and fitness for one generation."""

    client_id: str
    model: Model
    fitness: float
    received_at: float


@dataclasses.dataclass(frozen=True)
class GenerationResult:
    """A closed generation: the merged model and who contributed."""

    generation: int
    merged: Model
    reason: str  # 'complete' (every expected client reported) or 'timeout'
    fitness: dict[str, float]  # every reporting client's fitness
    weights: dict[str, float]  # merge weight of every reporting client (0 = not in the elite)
    merged_clients: tuple[str, ...]  # weight > 0, best first
    excluded_clients: tuple[str, ...]  # reported but outside the elite
    missing_clients: tuple[str, ...]  # expected by name but did not report
    fitness_estimate: float  # weighted mean fitness of the merged clients (an estimate only:
    # the merged model itself has not been evaluated; clients should evaluate before pulling)


class GenerationCollector:
    """Gathers client submissions for generation g and closes it into a merged model.

    A generation closes when every expected client has reported (reason ``"complete"``), or
    when ``timeout`` has elapsed since it opened and at least ``min_submissions`` models are
    in (reason ``"timeout"``).  The caller passes ``now`` (any monotonic clock: seconds, or a
    tick count), so the collector is deterministic and testable.  With fewer than
    ``min_submissions`` models at the timeout the generation stays open and closes at the
    first ``poll`` after enough models arrived.

    Args:
        expected_clients: the client ids (a collection of str) or just how many distinct
            clients to wait for (an int; any id is then accepted).
        timeout: how long (in the caller's clock units) a generation may stay open.
        min_submissions: fewest models a timed-out generation needs to close.  Default 1.
        method, temperature, elite_fraction: passed to ``merge_weights``.
        start_generation: number of the first generation.  Default 0.
        now: clock value at which the first generation opens.  Default 0.0.

    Submissions for an older generation are ignored (``submit`` returns False and counts
    them in ``stale``); a newer generation number is also refused (counted in ``ahead``).
    A client that reports twice in one generation replaces its earlier submission.  Every
    model must have the tensor names and shapes of the first model accepted.
    """

    def __init__(self, expected_clients: int | Collection[str], *, timeout: float,
                 min_submissions: int = 1, method: str = 'rank', temperature: float = 1.0,
                 elite_fraction: float | None = None, start_generation: int = 0, now: float = 0.0) -> None:
        if isinstance(expected_clients, bool):
            raise TypeError('expected_clients must be an int or a collection of client ids')
        if isinstance(expected_clients, (int, np.integer)):
            if expected_clients < 1:
                raise ValueError(f'expected_clients must be >= 1, got {expected_clients}')
            self.expected_ids: frozenset[str] | None = None
            self.expected_count = int(expected_clients)
        else:
            if isinstance(expected_clients, str):
                raise TypeError('expected_clients must be a collection of ids, not one string')
            ids = frozenset(str(c) for c in expected_clients)
            if not ids:
                raise ValueError('expected_clients must name at least one client')
            self.expected_ids = ids
            self.expected_count = len(ids)
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise ValueError(f'timeout must be a finite number > 0, got {timeout!r}')
        if isinstance(min_submissions, bool) or not isinstance(min_submissions, int) \
                or not 1 <= min_submissions <= self.expected_count:
            raise ValueError(f'min_submissions must be an integer in [1, {self.expected_count}], '
                             f'got {min_submissions!r}')
        merge_weights([0.0], method, temperature, elite_fraction)  # validates the merge settings
        self.timeout = float(timeout)
        self.min_submissions = min_submissions
        self.method, self.temperature, self.elite_fraction = method, temperature, elite_fraction
        self.generation = int(start_generation)
        self.opened_at = float(now)
        self.submissions: dict[str, Submission] = {}
        self.stale = 0
        self.ahead = 0
        self._template: dict[str, tuple[int, ...]] | None = None

    def submit(self, client_id: str, generation: int, model: Mapping[str, np.ndarray], fitness: float,
               now: float) -> bool:
        """Offer a client's model for ``generation``; True when accepted into the open one.

        Raises ValueError for an unknown client id, a non-finite fitness or a model whose
        tensors do not match (names, shapes, float dtype, finite values).
        """
        client_id = str(client_id)
        if self.expected_ids is not None and client_id not in self.expected_ids:
            raise ValueError(f'unknown client {client_id!r}; expected one of {sorted(self.expected_ids)}')
        if not (isinstance(fitness, (int, float, np.floating, np.integer)) and math.isfinite(fitness)):
            raise ValueError(f'fitness of client {client_id!r} must be a finite number, got {fitness!r}')
        _check_models([model])
        shapes = {k: tuple(np.shape(v)) for k, v in model.items()}
        if self._template is not None and shapes != self._template:
            raise ValueError(f'model of client {client_id!r} does not match the architecture of the '
                             f'first model (tensor names or shapes differ): {self._diff(shapes)}')
        if generation < self.generation:
            self.stale += 1
            return False
        if generation > self.generation:
            self.ahead += 1
            return False
        if self._template is None:
            self._template = shapes
        copied = {k: np.array(v, dtype=np.float32, copy=True) for k, v in model.items()}
        self.submissions[client_id] = Submission(client_id, copied, float(fitness), float(now))
        return True

    def ready(self, now: float) -> str | None:
        """Why the open generation can close now ('complete' / 'timeout'), or None."""
        if len(self.submissions) >= self.expected_count:
            return 'complete'
        if now - self.opened_at >= self.timeout and len(self.submissions) >= self.min_submissions:
            return 'timeout'
        return None

    def poll(self, now: float) -> GenerationResult | None:
        """Close the open generation when it is ready; then the next one opens at ``now``."""
        reason = self.ready(now)
        if reason is None:
            return None
        subs = sorted(self.submissions.values(), key=lambda s: s.client_id)
        fitness = [s.fitness for s in subs]
        weights = merge_weights(fitness, self.method, self.temperature, self.elite_fraction)
        merged = average_models([s.model for s in subs], weights)
        best_first = sorted(zip(subs, weights), key=lambda p: (-p[0].fitness, p[0].client_id))
        merged_ids = tuple(s.client_id for s, w in best_first if w > 0)
        excluded = tuple(s.client_id for s, w in zip(subs, weights) if w == 0)
        missing = tuple(sorted(self.expected_ids - set(self.submissions))) if self.expected_ids else ()
        result = GenerationResult(
            generation=self.generation, merged=merged, reason=reason,
            fitness={s.client_id: s.fitness for s in subs},
            weights={s.client_id: float(w) for s, w in zip(subs, weights)},
            merged_clients=merged_ids, excluded_clients=excluded, missing_clients=missing,
            fitness_estimate=float(np.dot(weights, fitness)))
        self.generation += 1
        self.opened_at = float(now)
        self.submissions = {}
        return result

    def _diff(self, shapes: dict[str, tuple[int, ...]]) -> str:
        assert self._template is not None
        missing = sorted(set(self._template) - set(shapes))
        extra = sorted(set(shapes) - set(self._template))
        changed = sorted(k for k in set(shapes) & set(self._template) if shapes[k] != self._template[k])
        return f'missing {missing}, extra {extra}, different shapes {changed}'
