"""dcdrl_ros.bag's recording side: schema text, metadata.yaml, topic selection and the topic follower."""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from dcdrl_ros.bag.follow import TopicFollower, TopicSelection
from dcdrl_ros.bag.metadata import (
    BagMetadata,
    FileInfo,
    TopicInfo,
    endpoint_qos_of,
    metadata_yaml,
    parse_metadata,
    parse_qos_profiles,
    qos_profile_dict,
    qos_profiles_yaml,
    read_metadata,
    write_metadata,
)
from dcdrl_ros.bag.schema import SEPARATOR, message_definition
from dcdrl_ros.graph import INFINITE_NS, EndpointQos
from dcdrl_ros.messages import InterfaceRegistry
from dcdrl_ros.testing import all_message_types, message_class, random_message

MSG_DIR = Path(__file__).resolve().parents[2] / 'dcdrl_msgs' / 'msg'
OUR_TYPES = [name for name in all_message_types(package='dcdrl_msgs') if '/msg/' in name]
OTHER_TYPES = ['std_msgs/msg/String', 'std_msgs/msg/Float64MultiArray', 'sensor_msgs/msg/CompressedImage',
               'diagnostic_msgs/msg/DiagnosticArray']


# --- schema -------------------------------------------------------------------------------------------
def test_schema_appends_nested_types_once_depth_first_in_sorted_order():
    text = message_definition('dcdrl_msgs/msg/PolicyWeights')
    assert text.startswith((MSG_DIR / 'PolicyWeights.msg').read_text())
    headings = [line for line in text.splitlines() if line.startswith('MSG: ')]
    assert headings == ['MSG: dcdrl_msgs/Tensor', 'MSG: std_msgs/Header', 'MSG: builtin_interfaces/Time']
    assert f'\n{SEPARATOR}\nMSG: dcdrl_msgs/Tensor\n' in text
    nested = [line for line in message_definition('diagnostic_msgs/msg/DiagnosticArray').splitlines()
              if line.startswith('MSG: ')]
    assert nested == ['MSG: diagnostic_msgs/DiagnosticStatus', 'MSG: diagnostic_msgs/KeyValue',
                      'MSG: std_msgs/Header', 'MSG: builtin_interfaces/Time']


def test_mcap_ros2_decodes_every_message_type_with_our_schema():
    from mcap.records import Schema
    from mcap_ros2.decoder import DecoderFactory
    rng = np.random.default_rng(3)
    factory = DecoderFactory()
    for index, type_name in enumerate(OUR_TYPES + OTHER_TYPES):
        cls = message_class(type_name)
        message = random_message(cls, rng)
        schema = Schema(id=index + 1, name=type_name, encoding='ros2msg',
                        data=message_definition(type_name).encode())
        decoded = factory.decoder_for('cdr', schema)(cls.serialize(message))
        for name in cls.get_fields_and_field_types():
            ours, theirs = getattr(message, name), getattr(decoded, name)
            if isinstance(ours, (int, float, str, bool)):
                assert ours == theirs or (ours != ours and theirs != theirs), (type_name, name)


def _rosbag2_prefix(tmp_path: Path) -> Path:
    """An ament prefix holding dcdrl_msgs' .msg files, so rosbag2 finds them without a colcon build."""
    share = tmp_path / 'share'
    (share / 'ament_index' / 'resource_index' / 'packages').mkdir(parents=True)
    (share / 'ament_index' / 'resource_index' / 'packages' / 'dcdrl_msgs').write_text('')
    (share / 'dcdrl_msgs').mkdir()
    (share / 'dcdrl_msgs' / 'msg').symlink_to(MSG_DIR)
    return tmp_path


def test_schema_text_is_what_rosbag2_writes(ros2, tmp_path):
    prefix = _rosbag2_prefix(tmp_path)
    env = ros2.environment()
    env['AMENT_PREFIX_PATH'] = f'{prefix}:{env.get("AMENT_PREFIX_PATH", "")}'
    types = OUR_TYPES + OTHER_TYPES
    script = ('import json, sys, rosbag2_py\nsource = rosbag2_py.LocalMessageDefinitionSource()\n'
              'print(json.dumps({t: [source.get_full_text(t).encoding, '
              'source.get_full_text(t).encoded_message_definition] for t in sys.argv[1:]}))')
    result = subprocess.run([ros2.python(env), '-c', script, *types], env=env, capture_output=True, text=True,
                            timeout=120, check=True)
    reference = json.loads(result.stdout.strip().splitlines()[-1])
    registry = InterfaceRegistry([str(Path(p) / 'share') for p in env['AMENT_PREFIX_PATH'].split(':') if p])
    for type_name in types:
        assert reference[type_name][0] == 'ros2msg'
        assert message_definition(type_name, registry) == reference[type_name][1], type_name


# --- metadata -----------------------------------------------------------------------------------------
def _sample_metadata() -> BagMetadata:
    latched = qos_profile_dict(EndpointQos(reliability='BEST_EFFORT', durability='TRANSIENT_LOCAL', depth=1))
    topics = [(TopicInfo('/dcdrl/policy', 'dcdrl_msgs/msg/PolicyWeights', offered_qos_profiles=[latched],
                         type_description_hash='RIHS01_' + '0' * 64), 3),
              (TopicInfo('/chatter', 'std_msgs/msg/String', offered_qos_profiles=[]), 0)]
    return BagMetadata(duration=5, starting_time=1_000, message_count=3, topics_with_message_count=topics,
                       compression_format='zstd', compression_mode='file',
                       relative_file_paths=['b_0.mcap.zstd'], files=[FileInfo('b_0.mcap', 1_000, 5, 3)],
                       ros_distro='jazzy')


def test_metadata_round_trips_through_metadata_yaml(tmp_path):
    metadata = _sample_metadata()
    write_metadata(tmp_path, metadata)
    assert read_metadata(tmp_path) == metadata
    text = (tmp_path / 'metadata.yaml').read_text()
    assert not text.endswith('\n') and 'custom_data: ~' in text and '  topics_with_message_count:\n    - ' in text
    assert parse_metadata(metadata_yaml(BagMetadata(ros_distro='jazzy'))) == BagMetadata(ros_distro='jazzy')


def test_metadata_that_does_not_fit_on_the_disk_leaves_no_partial_file(tmp_path, monkeypatch):
    import errno

    def fill_the_disk(self, text, encoding=None):
        with open(self, 'w', encoding=encoding) as handle:
            handle.write(text[:10])
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(Path, 'write_text', fill_the_disk)
    with pytest.raises(OSError):
        write_metadata(tmp_path, _sample_metadata())
    assert os.listdir(tmp_path) == []


def test_metadata_refuses_a_file_that_is_not_rosbag2s(tmp_path):
    with pytest.raises(ValueError, match='rosbag2_bagfile_information'):
        parse_metadata('a: 1')
    with pytest.raises(ValueError, match='offered_qos_profiles'):
        parse_qos_profiles('just text')
    with pytest.raises(FileNotFoundError):
        read_metadata(tmp_path)


def test_qos_profiles_convert_both_ways_with_infinite_durations_as_rosbag2_writes_them():
    qos = EndpointQos(reliability='BEST_EFFORT', durability='TRANSIENT_LOCAL', depth=5, deadline_ns=1_500_000_000)
    profile = qos_profile_dict(qos)
    assert profile['lifespan'] == {'sec': 9223372036, 'nsec': 854775807}
    assert profile['deadline'] == {'sec': 1, 'nsec': 500_000_000} and profile['reliability'] == 'best_effort'
    assert endpoint_qos_of(profile) == qos and endpoint_qos_of({}).lifespan_ns == INFINITE_NS
    text = qos_profiles_yaml([profile])
    assert text.startswith('- history: keep_last\n  depth: 5\n') and not text.endswith('\n')
    assert parse_qos_profiles(text) == [profile]   # the string form of older bags and of MCAP channels


# --- topic selection ----------------------------------------------------------------------------------
def test_selection_follows_ros2_bag_records_rules():
    everything = TopicSelection(all_topics=True, exclude='stats$')
    assert everything.matches('/dcdrl/policy') and not everything.matches('/dcdrl/learner/stats')
    assert not everything.matches('/_hidden/x') and TopicSelection(all_topics=True, include_hidden=True).matches('/_x')
    named = TopicSelection(topics=['chatter', '/_private'])
    assert named.matches('/chatter') and named.matches('/_private') and not named.matches('/other')
    pattern = TopicSelection(include='experience|segments')
    assert pattern.matches('/dcdrl/experience') and not pattern.matches('/dcdrl/policy')
    with pytest.raises(ValueError, match='no topics'):
        TopicSelection()


# --- following a live graph -----------------------------------------------------------------------------
@pytest.mark.dds
def test_follower_picks_up_a_late_topic_with_its_offered_qos_and_raw_cdr(loopback_graph):
    from dcdrl_ros import runtime
    from dcdrl_ros.graph import GraphWatcher

    from std_msgs.msg import String
    _, context = loopback_graph
    recorder = runtime.Node('_recorder', context=context)
    talker = runtime.Node('talker', context=context)
    watcher = GraphWatcher(context)
    got: list[tuple[str, bytes, int, int]] = []
    added: list[TopicInfo] = []
    latched_topic, lossy_topic = f'/late_{os.getpid()}', f'/lossy_{os.getpid()}'   # unique: domains may be shared
    follower = TopicFollower(recorder, watcher, TopicSelection(topics=[latched_topic], include=f'^{lossy_topic}$'),
                             lambda *sample: got.append(sample), added.append)
    executor = runtime.SingleThreadedExecutor(context=context)
    executor.add_node(recorder)
    try:
        assert follower.poll() == []
        latched = runtime.QoSProfile(depth=1, durability=runtime.DurabilityPolicy.TRANSIENT_LOCAL)
        talker.create_publisher(String, latched_topic, latched).publish(String(data='before the recorder'))
        talker.create_publisher(String, lossy_topic, runtime.QoSProfile(
            depth=5, reliability=runtime.ReliabilityPolicy.BEST_EFFORT))
        deadline = time.monotonic() + 10
        while len(added) < 2 and time.monotonic() < deadline:
            watcher.wait(0.5, lambda graph: graph.has_publisher(latched_topic) and graph.has_publisher(lossy_topic))
            follower.poll()
        offered = {info.name: info.offered_qos_profiles for info in added}
        assert [(p['reliability'], p['durability'], p['depth']) for p in offered[latched_topic]] == [
            ('reliable', 'transient_local', 1)]
        assert [(p['reliability'], p['durability'], p['depth']) for p in offered[lossy_topic]] == [
            ('best_effort', 'volatile', 5)]
        assert {info.type for info in added} == {'std_msgs/msg/String'}
        assert added[0].type_description_hash == String.get_type_hash()
        while not got and time.monotonic() < deadline:   # the latched sample, published before we subscribed
            executor.spin_once(timeout_sec=0.1)
        topic, data, receive_ns, publish_ns = got[0]
        assert topic == latched_topic and data == String(data='before the recorder').serialize()
        assert 0 < publish_ns <= receive_ns <= time.time_ns()
    finally:
        follower.close()
        watcher.close()
        executor.shutdown()



# --- dcdrl bag record, end to end ------------------------------------------------------------------------
@pytest.mark.dds
def test_bag_record_picks_up_a_late_topic_and_ctrl_c_closes_the_bag(loopback_graph, tmp_path):
    from dcdrl_ros import runtime
    from dcdrl_ros.bag.reader import BagReader
    from dcdrl_ros.testing import python_child, wait_matched

    from std_msgs.msg import String
    domain, context = loopback_graph
    topic = f'/recorded_{os.getpid()}'
    bag = tmp_path / 'bag'
    with python_child(['-m', 'dcdrl_ros.cli', 'bag', 'record', '-e', f'^{topic}$', '-o', str(bag)], domain) as child:
        child.wait_for_line('Recording...', 30)
        talker = runtime.Node('talker', context=context)   # appears after the recorder started
        publisher = talker.create_publisher(String, topic, runtime.QoSProfile(
            depth=3, reliability=runtime.ReliabilityPolicy.BEST_EFFORT))
        child.wait_for_line(f"Subscribed to topic '{topic}'", 15)
        wait_matched([publisher], timeout=15)
        for index in range(5):
            publisher.publish(String(data=f'sample {index}'))
        assert child.stop(15) == 0    # SIGINT: the recorder closes the bag
    assert any('Recording stopped: ' in line for line in child.lines), child.lines
    reader = BagReader(bag)
    assert reader.damage is None and [t.name for t in reader.topics] == [topic]
    assert reader.topics[0].offered_qos_profiles[0]['reliability'] == 'best_effort'
    received = [String.deserialize(m.data).data for m in reader.messages()]
    assert received and set(received) <= {f'sample {i}' for i in range(5)}   # best effort: in order, maybe fewer


def test_recorder_node_parameters_select_as_the_cli_and_can_leave_out_weights():
    from dcdrl_ros.bag.recorder import WEIGHTS_TYPE, RecorderParameters, default_bag_name
    chosen = RecorderParameters(all_topics=False, include='^/dcdrl/', exclude='batches$', include_weights=False)
    selection = chosen.selection()
    assert selection.matches('/dcdrl/policy') and not selection.matches('/dcdrl/replay/batches')
    assert not selection.matches('/rosout') and tuple(selection.exclude_types) == (WEIGHTS_TYPE,)
    assert RecorderParameters().selection().exclude_types == ()
    named = RecorderParameters(output_dir='runs').bag_folder()
    assert re.fullmatch(r'runs/rosbag2_\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d', named)
    assert RecorderParameters(output='here').bag_folder() == 'here' and default_bag_name().startswith('rosbag2_')


def test_bag_record_refuses_an_existing_folder_and_no_topics_with_one_line(tmp_path, capsys):
    from dcdrl_ros.cli import main
    (tmp_path / 'taken').mkdir()
    assert main(['bag', 'record', '-a', '-o', str(tmp_path / 'taken')]) == 1
    assert capsys.readouterr().err == f"Output folder '{tmp_path / 'taken'}' already exists.\n"
    assert main(['bag', 'record', '-o', str(tmp_path / 'new')]) == 1
    assert capsys.readouterr().err.count('\n') == 1 and not (tmp_path / 'new').exists()


def test_a_bad_regular_expression_is_one_line_for_the_command_and_the_node_makes_no_folder(tmp_path, capsys):
    import sys

    from dcdrl_ros.cli import main
    from dcdrl_ros.testing import fresh_domain_id, loopback_env
    assert main(['bag', 'record', '-e', '(', '-o', str(tmp_path / 'command')]) == 1
    assert capsys.readouterr().err == ("Invalid choice of topics: invalid regular expression '(': "
                                       'missing ), unterminated subpattern at position 0\n')
    node = subprocess.run([sys.executable, '-m', 'dcdrl_ros.bag.recorder', '--ros-args', '-p',
                           f'output:={tmp_path / "node"}', '-p', 'exclude:=a('], env=loopback_env(fresh_domain_id()),
                          capture_output=True, text=True, timeout=120)
    assert node.returncode == 2, node.stderr
    assert node.stderr.strip().splitlines()[-1] == ("[FATAL] BagRecorderNode: invalid regular expression 'a(': "
                                                    'missing ), unterminated subpattern at position 1')
    assert 'Traceback' not in node.stderr and not (tmp_path / 'command').exists() and not (tmp_path / 'node').exists()


def test_the_recorder_warns_once_about_a_topic_of_an_unknown_type_and_records_the_rest(tmp_path):
    from types import SimpleNamespace

    from dcdrl_ros.bag.recorder import Recorder
    from dcdrl_ros.bag.writer import BagWriter
    lines: dict[str, list[str]] = {'info': [], 'warning': [], 'error': []}
    logger = SimpleNamespace(**{level: found.append for level, found in lines.items()})
    graph = SimpleNamespace(topic_names_and_types=lambda include_hidden: [('/split', ['nowhere_msgs/msg/Unknown'])],
                            topic_endpoints=lambda topic, readers: [SimpleNamespace(qos=EndpointQos())])
    watcher = SimpleNamespace(poll=lambda: None, graph=graph)
    node = SimpleNamespace(get_logger=lambda: logger)
    recorder = Recorder(node, watcher, TopicSelection(all_topics=True), BagWriter(tmp_path / 'bag'),
                        logger.info, logger.error)
    recorder.poll()
    recorder.poll()
    assert len(lines['warning']) == 1 and lines['warning'][0].startswith('not recording /split: its type ')
    assert lines['error'] == [] and recorder.failed is None and recorder.close().message_count == 0
