"""`ros2 run dcdrl_cloud parameter_server`: collects client models by generation, merges the elite,
publishes the merged generation, and answers "latest policy" requests.

Thin adapter over dcdrl_cloud.parameter_server (the rules are described there and in
docs/client-and-parameter-server.md). Bad submissions are refused with a throttled log line and
counted; the node keeps running. On shutdown it prints 'PARAMETER_SERVER REPORT {json}'.

Topics and services (relative; in /dcdrl unless started with -r __ns:=/other):
  client_model   PolicyWeights     in   reliable, keep-last 10 (producer, generation, has_fitness/fitness)
  policy         PolicyWeights     in   reliable, transient-local, depth 1 (the learner's; for get_policy)
  merged_policy  PolicyWeights     out  reliable, transient-local, depth 1 (generation g, version g,
                                        fitness = weighted mean fitness of the merged models)
  get_policy     GetPolicy (srv)        merged generation if any, else the latest learner policy

Parameters: the fields of dcdrl_cloud.parameter_server.ParameterServerConfig (their table is in
docs/client-and-parameter-server.md; `parameter_server --help` lists them).
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence

from dcdrl_cloud.parameter_server import ParameterServer, ParameterServerConfig, SubmissionRefused, env_dims
from dcdrl_core.names import DEFAULT_NAMESPACE
from dcdrl_learning.codec import WeightsRejected
from dcdrl_learning.weights_msg import MAX_PRODUCER_LENGTH, fill_weights, fitness_of, read_weights
from dcdrl_ros import ros
from dcdrl_ros.live_parameters import Live, LiveParameters, set_timer_period
from dcdrl_ros.parameter_dataclass import declare_parameters

from dcdrl_msgs.msg import PolicyWeights, Tensor
from dcdrl_msgs.srv import GetPolicy


class ParameterServerNode(ros.Node):
    def __init__(self) -> None:
        super().__init__('parameter_server', namespace=DEFAULT_NAMESPACE)
        # Live: poll_period_s; the merge settings are read at start.
        self.live = LiveParameters({'poll_period_s': Live(
            apply=lambda period: set_timer_period(self.poll_timer, period))})
        self.config = declare_parameters(self, ParameterServerConfig, self.live)
        obs_dim, action_dim = env_dims(self.config.env_id)
        self.logic = ParameterServer(self.config, obs_dim, action_dim, now=time.monotonic(),
                                     producer_name=self.get_name())
        latched = ros.QoSProfile(depth=1, reliability=ros.ReliabilityPolicy.RELIABLE,
                                 durability=ros.DurabilityPolicy.TRANSIENT_LOCAL)
        self.merged_pub = self.create_publisher(PolicyWeights, 'merged_policy', latched)
        self.create_subscription(PolicyWeights, 'client_model', self.on_model,
                                 ros.QoSProfile(depth=10, reliability=ros.ReliabilityPolicy.RELIABLE))
        self.create_subscription(PolicyWeights, 'policy', self.on_policy, latched)
        self.create_service(GetPolicy, 'get_policy', self.on_get_policy)
        self.poll_timer = self.create_timer(self.config.poll_period_s, self.poll)
        c = self.config
        elite = 'fitness >= mean' if not c.elite_fraction else f'best {c.elite_fraction:g}'
        self.get_logger().info(
            f'parameter_server started: {c.expected_models} models per generation (timeout '
            f'{c.generation_timeout_s:g} s after the first, at least {c.min_models}), merge {c.merge_method} '
            f'over {elite}, architecture {self.logic.architecture_id}, writing {self.logic.csv_path}')

    def on_model(self, message: PolicyWeights) -> None:
        producer = message.producer[:MAX_PRODUCER_LENGTH]   # longer ones are refused (malformed); logs stay short
        try:
            generation = self.logic.submit(read_weights(message), producer, int(message.generation),
                                           fitness_of(message), time.monotonic())
        except (SubmissionRefused, WeightsRejected) as error:
            reason = getattr(error, 'reason', 'malformed')
            if isinstance(error, WeightsRejected):  # read_weights could not even parse the message
                self.logic.refused[reason] += 1
            self.get_logger().warning(
                f'refused model from {producer!r} for generation {message.generation}: {error} '
                f'[{sum(self.logic.refused.values())} refused]', throttle_duration_sec=1.0)
            return
        self.get_logger().info(
            f'accepted model from {producer!r} for generation {generation} (fitness {message.fitness:.4g}, '
            f'{self.logic.submissions_in_open_generation()}/{self.config.expected_models})')
        self.poll()

    def on_policy(self, message: PolicyWeights) -> None:
        producer = message.producer[:MAX_PRODUCER_LENGTH]
        try:
            try:
                payload = read_weights(message)
            except WeightsRejected as error:   # not even a payload: the logic never sees it, so count it here
                self.logic.learner_refused[error.reason] += 1
                raise
            version = self.logic.offer_learner_policy(payload, producer)
        except WeightsRejected as error:
            self.get_logger().warning(
                f'refused learner policy version {message.version} from {producer!r}: {error} '
                f'[{sum(self.logic.learner_refused.values())} refused]', throttle_duration_sec=1.0)
            return
        self.get_logger().info(f'learner policy version {version} kept for get_policy', throttle_duration_sec=10.0)

    def poll(self) -> None:
        merged = self.logic.poll(time.monotonic(), time.time())
        if merged is None:
            return
        message = fill_weights(PolicyWeights(), merged.payload, Tensor, producer=self.get_name(),
                               generation=merged.generation, fitness=merged.fitness_estimate)
        message.header.stamp = self.get_clock().now().to_msg()
        self.merged_pub.publish(message)
        self.get_logger().info(merged.describe())

    def on_get_policy(self, request: GetPolicy.Request, response: GetPolicy.Response) -> GetPolicy.Response:
        answer = self.logic.answer(request.architecture_id, int(request.min_version))
        response.available = answer.available
        response.message = answer.message
        if answer.payload is not None:
            fill_weights(response.weights, answer.payload, Tensor, producer=answer.producer,
                         generation=answer.generation, fitness=answer.fitness)
            response.weights.header.stamp = self.get_clock().now().to_msg()
        else:
            self.get_logger().info(f'get_policy unanswered: {answer.message}', throttle_duration_sec=1.0)
        return response

    def destroy_node(self) -> None:
        report = dict(self.logic.stats(), malformed_samples=ros.malformed_samples(self))
        print('PARAMETER_SERVER REPORT ' + json.dumps(report), flush=True)
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    return ros.run_node(ParameterServerNode, args)
