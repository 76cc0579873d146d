"""`ros2 run dcdrl_sim client`: a simulated DC-DRL client.

It steps K environment copies, publishes experience batches (stamped with the policy version
that chose the actions) and episode statistics. Central mode: it acts with the newest learner
`policy` (random actions before the first). Collective mode: it trains a local agent, submits
it with its fitness every generation on `client_model`, mutates, and pulls merged generations
from `merged_policy` by the DC-DRL rule. Thin adapter: the logic is dcdrl_sim.client_logic and
dcdrl_sim.collective; the work runs in the node's own thread, callbacks only hand weights over.
The torch-backed part (weights validation, local agent) is built in a second thread while a
central client already streams random-action experience (torch takes seconds to import on a
busy machine); weights that arrive before that are held (the newest) and taken in afterwards. A stop
during that build does not wait for it: the report says "armed": false and the process ends at once.

Topics (relative; in /dcdrl unless started with -r __ns:=/other):
  experience     ExperienceBatch  out  reliable, keep-last experience_depth
  episode_stats  EpisodeStats     out  best effort, keep-last 5
  policy         PolicyWeights    in   reliable, transient-local, depth 1 (central mode)
  merged_policy  PolicyWeights    in   reliable, transient-local, depth 1 (collective mode)
  client_model   PolicyWeights    out  reliable, keep-last 10 (collective mode)

Parameters: the fields of dcdrl_sim.client_logic.ClientConfig (their table is in
docs/client-and-parameter-server.md; `client --help` lists them).

On shutdown it prints one line 'CLIENT REPORT {json}' with its counters.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import replace

from dcdrl_core.names import DEFAULT_NAMESPACE
from dcdrl_learning.experience import fill_experience
from dcdrl_ros import ros
from dcdrl_ros.live_parameters import Live, LiveParameters, config_check
from dcdrl_ros.parameter_dataclass import declare_parameters
from dcdrl_sim.client_logic import ClientConfig, ClientLogic, StepResult

from dcdrl_msgs.msg import EpisodeStats, ExperienceBatch, PolicyWeights, Tensor

# The arming thread of every client built in this process: main() ends the process at once if one still runs.
_arming_threads: list[threading.Thread] = []


class SimulatedClient(ros.Node):
    def __init__(self) -> None:
        super().__init__('client', namespace=DEFAULT_NAMESPACE)
        # Live: the publish rate, the progress period and (central mode) the exploration noise.
        self.live = LiveParameters({
            'publish_rate_hz': Live(apply=lambda rate: setattr(self, 'period_s', 1.0 / rate)),
            'stats_period_s': Live(apply=lambda period: setattr(self, 'stats_period_s', period)),
            'exploration_noise': Live(check=self._noise_refusal,
                                      apply=lambda scale: self.logic.set_exploration_noise(scale))})
        config = declare_parameters(self, ClientConfig, self.live)
        self.config = replace(config, client_id=config.client_id or self.get_name())
        self.client_id = self.config.client_id
        self.logic = ClientLogic(self.config, arm=False)  # environments now, torch in _arm
        self.period_s = 1.0 / self.config.publish_rate_hz
        self.stats_period_s = self.config.stats_period_s

        self.experience_pub = self.create_publisher(
            ExperienceBatch, 'experience',
            ros.QoSProfile(depth=self.config.experience_depth, reliability=ros.ReliabilityPolicy.RELIABLE))
        self.episode_pub = self.create_publisher(EpisodeStats, 'episode_stats', ros.qos_profile_sensor_data)
        latched = ros.QoSProfile(depth=1, reliability=ros.ReliabilityPolicy.RELIABLE,
                                 durability=ros.DurabilityPolicy.TRANSIENT_LOCAL)
        self.model_pub = None
        if self.config.mode == 'central':
            self.create_subscription(PolicyWeights, 'policy', self.on_policy, latched)
        else:
            self.create_subscription(PolicyWeights, 'merged_policy', self.on_merged, latched)
            self.model_pub = self.create_publisher(
                PolicyWeights, 'client_model', ros.QoSProfile(depth=10, reliability=ros.ReliabilityPolicy.RELIABLE))
        self.sequence = 0
        self.episodes = 0
        self.transitions = 0
        self.errors = 0
        self._stop = threading.Event()
        self._armed = threading.Event()
        self._hold_lock = threading.Lock()
        self._held: PolicyWeights | None = None  # newest weights that came before the logic was armed
        self._arming = threading.Thread(target=self._arm, name=f'{self.client_id}-arm', daemon=True)
        self._worker = threading.Thread(target=self._run, name=f'{self.client_id}-worker', daemon=True)
        _arming_threads.append(self._arming)
        self._arming.start()
        self._worker.start()
        self.get_logger().info(
            f'client {self.client_id} started: {self.config.env_id} x{self.config.num_envs}, '
            f'{self.config.batch_steps} steps per batch, mode {self.config.mode}')

    def _noise_refusal(self, scale: float) -> str:
        if self.config.mode != 'central':
            return 'changes while running only in central mode (the collective agent builds its noise at start)'
        return config_check(lambda: self.logic.config, 'exploration_noise')(scale)

    def _arm(self) -> None:
        try:
            self.logic.arm()
        except Exception:
            self.errors += 1
            self.get_logger().error(f'client could not build its networks:\n{traceback.format_exc()}')
            return
        if self._stop.is_set():  # stopped meanwhile: the node may be gone
            return
        self.get_logger().info(f'ready for weights: architecture {self.logic.architecture_id}')
        with self._hold_lock:  # under the lock: a newer message waits until the held one is in
            self._armed.set()
            held, self._held = self._held, None
            if held is not None:
                self._take_in(held)

    # ------------------------------------------------------------------ callbacks: hand over only
    def on_policy(self, message: PolicyWeights) -> None:
        self._hold_or_take(message)

    def on_merged(self, message: PolicyWeights) -> None:
        self._hold_or_take(message)

    def _hold_or_take(self, message: PolicyWeights) -> None:
        with self._hold_lock:
            if not self._armed.is_set():
                self._held = message  # depth 1, like the topic: only the newest matters
                return
        self._take_in(message)

    def _take_in(self, message: PolicyWeights) -> None:
        # Imported here, not at the top: torch comes with them (loaded by arm() by now).
        from dcdrl_learning.codec import WeightsRejected
        from dcdrl_learning.weights_msg import MAX_PRODUCER_LENGTH, fitness_of, read_weights
        central = self.config.mode == 'central'
        what, intake = ('policy', self.logic.policy) if central else ('merged policy', self.logic.merged)
        try:
            try:
                payload = read_weights(message)
            except WeightsRejected as error:   # not even a payload: the intake never sees it, so count it here
                intake.record_rejection(error.reason)
                raise
            if central:
                self.logic.offer_policy(payload)
            else:
                self.logic.offer_merged(payload, fitness_of(message), int(message.generation))
        except WeightsRejected as error:
            self.get_logger().warning(
                f'refused {what} version {message.version} from {message.producer[:MAX_PRODUCER_LENGTH]!r} '
                f'({error.reason}): {error} '
                f'[{intake.refused_total()} refused]', throttle_duration_sec=1.0)
            return
        if central:
            self.get_logger().debug(f'accepted policy version {message.version} from {message.producer!r}')
        else:
            self.get_logger().info(f'received merged generation {message.generation} '
                                   f'(fitness estimate {message.fitness:.4g})')

    # ------------------------------------------------------------------ the worker thread
    def _run(self) -> None:
        if self.config.mode == 'collective':  # it acts with its local agent: wait until it exists
            while not self._armed.wait(timeout=0.5):
                if self._stop.is_set() or not self._arming.is_alive():
                    return
        next_stats = time.monotonic() + self.stats_period_s
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._publish(self.logic.step())
            except Exception:  # a bug: say so loudly, keep the node (and its report) alive
                self.errors += 1
                self.get_logger().error(f'client step failed:\n{traceback.format_exc()}',
                                        throttle_duration_sec=5.0)
            now = time.monotonic()
            if now >= next_stats:
                next_stats = now + self.stats_period_s
                self._log_progress()
            # Rate limit: wait out the rest of the period (returns at once when stopping).
            self._stop.wait(max(0.0, self.period_s - (now - started)))

    def _publish(self, result: StepResult) -> None:
        block = result.block
        if result.swapped_to is not None:
            self.get_logger().info(f'acting with policy version {result.swapped_to}', throttle_duration_sec=2.0)
        for decision in result.decisions:
            self.get_logger().info(decision.describe())
        if len(block):
            message = fill_experience(
                ExperienceBatch(), client_id=self.client_id, sequence=self.sequence,
                policy_version=result.policy_version, obs=block.obs, actions=block.actions,
                rewards=block.rewards, next_obs=block.next_obs, terminated=block.terminated,
                truncated=block.truncated, extra_names=block.extra_names, extras=block.extras)
            message.header.stamp = self.get_clock().now().to_msg()
            self.experience_pub.publish(message)
            self.sequence += 1
            self.transitions += len(block)
        for episode in block.episodes:
            self.episodes += 1
            stats = EpisodeStats(
                client_id=self.client_id, episode=self.episodes, policy_version=result.policy_version,
                length=episode.length, episode_return=episode.episode_return, cost=episode.cost,
                latency_mean_s=episode.latency_mean_s, energy_mean_j=episode.energy_mean_j,
                deadline_miss_ratio=episode.deadline_miss_ratio, offload_fraction=episode.offload_fraction)
            stats.header.stamp = self.get_clock().now().to_msg()
            self.episode_pub.publish(stats)
        if result.submission is not None and self.model_pub is not None:
            submission = result.submission
            from dcdrl_learning.codec import encode_weights
            from dcdrl_learning.weights_msg import fill_weights
            payload = encode_weights(submission.weights, self.logic.architecture_id, submission.generation)
            model = fill_weights(PolicyWeights(), payload, Tensor, producer=self.client_id,
                                 generation=submission.generation, fitness=submission.fitness)
            model.header.stamp = self.get_clock().now().to_msg()
            self.model_pub.publish(model)
            self.get_logger().info(
                f'generation {submission.generation}: submitted model with fitness {submission.fitness:.4g} '
                f'after {submission.env_steps} transitions' + (', then mutated' if result.mutated else ''))

    def _log_progress(self) -> None:
        s = self.logic.stats()
        line = (f"{s['env_steps']} transitions in {self.sequence} batches, {self.episodes} episodes, "
                f"policy version {s['policy_version']}")
        if self.config.mode == 'central':
            line += f", policies accepted {s['policies_accepted']}, refused {sum(s['policies_refused'].values())}"
        else:
            line += (f", updates {s['updates']}, submissions {s['submissions']}, pulls {s['pulls']}/"
                     f"{s['pulls'] + s['no_pulls']}, mutations {s['mutations']}")
        self.get_logger().info(line)

    def report(self) -> dict:
        return {'client_id': self.client_id, 'sequence': self.sequence, 'transitions': self.transitions,
                'episodes': self.episodes, 'errors': self.errors, 'malformed_samples': ros.malformed_samples(self),
                **self.logic.stats()}

    def destroy_node(self) -> None:
        self._stop.set()
        self._worker.join(timeout=30.0)
        # Not the arming thread: torch's import cannot be interrupted and, on a busy machine, outlasts the
        # patience of `ros2 launch` (SIGKILL 10 s after Ctrl-C); main() ends the process without it.
        if self._arming.is_alive():
            self.get_logger().info('stopping before the networks were built: not waiting for torch to load')
        print('CLIENT REPORT ' + json.dumps(self.report()), flush=True)
        if not self._worker.is_alive():  # never close envs in use (arming does not step them)
            self.logic.close()
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    code = ros.run_node(SimulatedClient, args)
    if any(thread.is_alive() for thread in _arming_threads):
        # Stopped while torch was loading: the node is cleaned up and its report printed. Python's exit would
        # now spend seconds collecting a half-imported torch, then end the importing thread from inside the
        # import (CPython 3.11 ends daemon threads with pthread_exit); end the process here instead.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
