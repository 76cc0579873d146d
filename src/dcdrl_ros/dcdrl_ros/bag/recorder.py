"""One Recorder under `dcdrl bag record` and the `bag_recorder` node: selected topics into a BagWriter.

The recorder runs on our Cyclone runtime on both backends, also where ROS 2 is installed: it needs raw,
typeless subscriptions (the CDR bytes as received, never re-encoded), the publishers' offered QoS from
discovery, and the writers' source timestamps, which rclpy's Python API does not give together.

Node parameters: the fields of RecorderParameters (docs/recording.md, "Recording from launch files").
A full disk or a write error stops the node with one line (messages written and lost) and exit code 1.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dcdrl_ros.bag.follow import TopicFollower, TopicSelection
from dcdrl_ros.bag.metadata import BagMetadata, TopicInfo
from dcdrl_ros.bag.record_cli import FLUSH_PERIOD_S
from dcdrl_ros.bag.writer import COMPRESSION_MODES, BagWriteError, BagWriter
from dcdrl_ros.parameter_dataclass import parameter

WEIGHTS_TYPE = 'dcdrl_msgs/msg/PolicyWeights'
DISCOVERY_PERIOD_S = 0.1   # ros2 bag record's --polling-interval default (100 ms)


def default_bag_name() -> str:
    """rosbag2's folder name for a bag without -o: rosbag2_YYYY_MM_DD-HH_MM_SS (local time)."""
    return time.strftime('rosbag2_%Y_%m_%d-%H_%M_%S')


class Recorder:
    """Follows the selected topics of a graph into a writer until the caller stops polling."""

    def __init__(self, node: Any, watcher: Any, selection: TopicSelection, writer: BagWriter,
                 info: Callable[[str], None], error: Callable[[str], None]) -> None:
        self.writer = writer
        self.failed: str | None = None   # the writer's one line, once it stopped
        self._info = info
        self._error = error
        # a topic left out (unknown type, several types) is the node's warning line; error is for the bag
        self.follower = TopicFollower(node, watcher, selection, self._on_message, self._on_topic)

    def _on_topic(self, topic: TopicInfo) -> None:
        self.writer.add_topic(topic)
        self._info(f"Subscribed to topic '{topic.name}'")

    def _on_message(self, topic: str, data: bytes, receive_ns: int, publish_ns: int) -> None:
        if self.failed is not None:
            return
        try:
            self.writer.write(topic, data, receive_ns, publish_ns)
        except BagWriteError as error:
            self.failed = str(error)
            self._error(self.failed)

    def poll(self) -> None:
        """Subscribes to selected topics that appeared since the last call; writes out a stale chunk."""
        if self.failed is None:
            try:
                self.follower.poll()
                self.writer.flush_stale()
            except BagWriteError as error:
                self.failed = str(error)
                self._error(self.failed)

    def close(self) -> BagMetadata:
        self.follower.close()
        return self.writer.close()


def summary(recorder: Recorder) -> str:
    writer = recorder.writer
    return (f'Recording stopped: {writer.written} messages in {writer.directory}'
            + (f', {writer.lost} lost' if writer.lost else ''))


# --- the bag_recorder node ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecorderParameters:
    output: str = parameter('', "the bag's folder; '' = rosbag2_YYYY_MM_DD-HH_MM_SS inside output_dir")
    output_dir: str = parameter('.', 'where a bag folder named by the start time is made (output empty)')
    all_topics: bool = parameter(True, 'record every topic (besides topics and include)')
    topics: tuple[str, ...] = parameter((), 'topics to record')
    include: str = parameter('', "regular expression: also record the topics it matches ('' = none)")
    exclude: str = parameter('', "regular expression: leave out the topics it matches ('' = none)")
    include_hidden: bool = parameter(False, "record hidden topics (a name token starting with '_') too")
    include_weights: bool = parameter(True, f'record {WEIGHTS_TYPE} topics (policy, merged_policy, client_model)')
    max_bag_size: int = parameter(0, 'bytes per file before the next file starts (0 = one file)', low=0)
    max_bag_duration: float = parameter(0.0, 'seconds per file before the next file starts (0 = one file)',
                                        low=0.0)
    compression_mode: str = parameter('none', "'file': each closed file zstd-compressed whole, 'message': "
                                      'each payload', choices=COMPRESSION_MODES)
    discovery_period_s: float = parameter(DISCOVERY_PERIOD_S, 'how often new topics are looked for (s)',
                                          above=0.0)
    flush_period_s: float = parameter(FLUSH_PERIOD_S, 'a chunk goes to disk after this long at the latest (s; '
                                      '0 = when full, as rosbag2): what a SIGKILL can lose', low=0.0)

    def selection(self) -> TopicSelection:
        return TopicSelection(all_topics=self.all_topics, topics=self.topics, include=self.include or None,
                              exclude=self.exclude or None, include_hidden=self.include_hidden,
                              exclude_types=() if self.include_weights else (WEIGHTS_TYPE,))

    def bag_folder(self) -> str:
        return self.output or os.path.join(self.output_dir, default_bag_name())


def _recorder_node_class(ros: Any) -> type:
    from dcdrl_ros.graph import GraphWatcher
    from dcdrl_ros.parameter_dataclass import declare_parameters

    class BagRecorderNode(ros.Node):
        def __init__(self) -> None:
            super().__init__('bag_recorder')
            parameters = declare_parameters(self, RecorderParameters)
            logger = self.get_logger()
            selection = parameters.selection()   # a bad expression stops the node before the folder is made
            try:
                writer = BagWriter(parameters.bag_folder(), parameters.max_bag_size, parameters.max_bag_duration,
                                   parameters.compression_mode, 'zstd', flush_period_s=parameters.flush_period_s)
            except BagWriteError as error:
                raise ValueError(str(error)) from None   # run_node: one [FATAL] line, exit code 2
            self.watcher = GraphWatcher(self.context)
            self.recorder = Recorder(self, self.watcher, selection, writer, logger.info, logger.error)
            logger.info(f'Recording... into {writer.directory}')   # before the topics' lines, as ros2 bag record
            self.recorder.poll()
            self.timer = self.create_timer(parameters.discovery_period_s, self._poll)

        def _poll(self) -> None:
            self.recorder.poll()
            if self.recorder.failed is not None:
                raise SystemExit(1)   # the clean-up in run_node still closes the bag

        def destroy_node(self) -> None:
            self.recorder.close()
            self.get_logger().info(summary(self.recorder))
            self.watcher.close()
            super().destroy_node()
    return BagRecorderNode


def main(args: Sequence[str] | None = None) -> int:
    """The `bag_recorder` executable: our runtime whatever DCDRL_BACKEND says (see the module's doc)."""
    os.environ['DCDRL_BACKEND'] = 'cyclone'
    from dcdrl_ros import ros
    if ros.BACKEND != 'cyclone':
        raise RuntimeError('bag_recorder: dcdrl_ros.ros was imported with another backend before main()')
    return ros.run_node(_recorder_node_class(ros), args)


if __name__ == '__main__':
    sys.exit(main())
