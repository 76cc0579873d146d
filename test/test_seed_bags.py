"""Seeding from recordings: recorded ExperienceBatch / TrajectorySegment messages go through the live intake.

The fast tests feed seed_from_bags an in-memory reader of (type, CDR bytes) records: refusals are counted in the
intake's own counters, both message types, several bags, missing and damaged bags (also a real one). A replay
node seeds once: restarted, it restores its snapshot instead of storing the bag again. The system test records a
running training graph with `dcdrl bag record`, then trains a fresh learner from that bag alone.
"""
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dcdrl_cloud.replay_service import ReplayService
from dcdrl_cloud.replay_service_config import ReplayServiceConfig
from dcdrl_cloud.seed_bags import (
    EXPERIENCE_TYPE,
    SEGMENT_TYPE,
    experience_intake,
    max_message_bytes,
    seed_from_bags,
    segment_intake,
)
from dcdrl_core.protocol import SegmentFlag
from dcdrl_learning.experience import fill_experience
from dcdrl_ros import runtime
from dcdrl_ros.messages import get_interface
from dcdrl_ros.testing import ChildProcess, TopicRecorder, loopback_env, node_process

OBS, ACT = 4, 2
FAST = Path(__file__).parent / 'fixtures' / 'train_fast.yaml'
DCDRL = [sys.executable, '-m', 'dcdrl_ros.cli']
TIMEOUT = 120.0   # generous: torch imports and discovery on a loaded 2-core machine
OFFLINE_UPDATES = 6000


@dataclass
class Record:
    topic: str
    type_name: str
    data: bytes


class MemoryBag:
    """A bag reader over in-memory records; ``fail_after`` raises mid-iteration like a damaged chunk."""

    def __init__(self, records, damage=None, fail_after=None):
        self.records, self.damage, self.fail_after = records, damage, fail_after
        self.topics = [SimpleNamespace(name=r.topic, type=r.type_name) for r in records]

    def messages(self, topics=None):
        for index, record in enumerate(self.records):
            if self.fail_after is not None and index >= self.fail_after:
                raise ValueError('chunk 3: CRC mismatch')
            if topics is None or record.topic in topics:
                yield record


def experience_bytes(sequence, batch=5, obs_dim=OBS, nan=False, client='client_0'):
    rng = np.random.default_rng(sequence)
    obs = rng.normal(size=(batch, obs_dim)).astype(np.float32)
    if nan:
        obs[0, 0] = np.nan
    message = fill_experience(get_interface(EXPERIENCE_TYPE)(), client_id=client, sequence=sequence, policy_version=1,
                              obs=obs, actions=rng.uniform(-1, 1, (batch, ACT)), rewards=rng.normal(size=batch),
                              next_obs=obs + 0.1, terminated=np.zeros(batch, bool), truncated=np.zeros(batch, bool))
    return message.serialize()


def record(data, type_name=EXPERIENCE_TYPE, topic='/dcdrl/experience'):
    return Record(topic, type_name, data)


def service(capacity=1000):
    return ReplayService(ReplayServiceConfig(capacity=capacity, min_size_to_sample=1, seed=0))


def opener(bags):
    return lambda path: bags[path]


def test_every_refusal_is_counted_by_the_live_intake_and_summed_up(tmp_path):
    replay = service()
    records = [record(experience_bytes(0)), record(experience_bytes(1)),
               record(experience_bytes(2, nan=True)),                 # NaN
               record(experience_bytes(3, obs_dim=OBS + 1)),          # another architecture
               record(experience_bytes(4, batch=400)),                # over the sample limit below
               record(b'\x00\x01\x00\x00\x07'),                        # not an ExperienceBatch
               record(b'other', type_name='std_msgs/msg/String', topic='/chatter')]   # another type: skipped
    bag = tmp_path / 'bag'
    bag.mkdir()
    summary = seed_from_bags([str(bag)], EXPERIENCE_TYPE, experience_intake(replay),
                             open_bag=opener({str(bag): MemoryBag(records)}), max_bytes=4096)
    assert len(replay) == summary.transitions == 10
    assert summary.messages == 6 and summary.problems == []
    assert dict(summary.refused) == {'obs contains NaN or Inf': 1, f'obs_dim {OBS + 1}, expected {OBS}': 1,
                                     'oversized': 1, 'not decodable': 1}
    assert replay.intake.stats.rejected == 2   # the two the intake saw: the live counter
    assert summary.line() == (f'seeded 10 transitions from 1 bag, refused 4 (1 obs contains NaN or Inf, '
                              f'1 obs_dim {OBS + 1}, expected {OBS}, 1 oversized, 1 not decodable)')


def test_a_bag_without_the_type_says_which_topics_it_has(tmp_path):
    bag = tmp_path / 'bag'
    bag.mkdir()
    summary = seed_from_bags([str(bag)], EXPERIENCE_TYPE, experience_intake(service()),
                             open_bag=opener({str(bag): MemoryBag([record(b'x', 'std_msgs/msg/String', '/chatter')])}))
    assert summary.transitions == 0 and summary.bags_read == 1
    assert summary.problems == [f'seed bag {bag}: no {EXPERIENCE_TYPE} topic in it (its topics: /chatter '
                                f'(std_msgs/msg/String))']


def test_seeded_experience_is_no_arrival_for_the_version_lag_or_the_intake_rate(tmp_path):
    now = [100.0]
    replay = ReplayService(ReplayServiceConfig(capacity=1000, min_size_to_sample=1, seed=0), clock=lambda: now[0])
    replay.latest_policy_version = 23
    bag = tmp_path / 'bag'
    bag.mkdir()
    seed_from_bags([str(bag)], EXPERIENCE_TYPE, experience_intake(replay),
                   open_bag=opener({str(bag): MemoryBag([record(experience_bytes(0))])}))
    assert len(replay) == 5 and replay.version_lag()['mean'] is None
    now[0] += 1.0
    replay.ingest(get_interface(EXPERIENCE_TYPE).deserialize(experience_bytes(1, batch=3)))  # live, version 1
    stats = replay.stats()
    assert stats['transitions_received'] == 8 and stats['transitions_per_sec'] == pytest.approx(3.0)
    assert replay.version_lag()['mean'] == 22


def test_several_bags_a_missing_one_and_a_damaged_one(tmp_path):
    replay = service()
    paths = [tmp_path / name for name in ('a', 'b', 'damaged')]
    for path in paths:
        path.mkdir()
    bags = {str(paths[0]): MemoryBag([record(experience_bytes(0))]),
            str(paths[1]): MemoryBag([record(experience_bytes(1), topic='/robot1/dcdrl/experience')]),   # any topic
            str(paths[2]): MemoryBag([record(experience_bytes(k)) for k in range(2, 6)],
                                     damage='file 0 truncated after chunk 2: 2 messages lost', fail_after=2)}
    missing = str(tmp_path / 'nowhere')
    summary = seed_from_bags([str(p) for p in paths] + [missing], EXPERIENCE_TYPE, experience_intake(replay),
                             open_bag=opener(bags))
    assert summary.transitions == len(replay) == 4 * 5   # a, b and the two messages before the damage
    assert summary.bags_read == 3 and summary.paths == 4
    assert summary.problems == [
        f'seed bag {paths[2]}: read 2 messages, then failed: chunk 3: CRC mismatch',
        f'seed bag {paths[2]}: damaged (file 0 truncated after chunk 2: 2 messages lost); used the 2 messages '
        'recovered',
        f'seed bag {missing}: no such file or folder']
    assert summary.line() == 'seeded 20 transitions from 3 bags (1 not readable), refused 0'


def test_an_unreadable_bag_is_one_problem_and_the_rest_is_used(tmp_path):
    def open_bag(path):
        if path.endswith('bad'):
            raise ValueError('no metadata.yaml and no .mcap file')
        return MemoryBag([record(experience_bytes(0))])
    (tmp_path / 'bad').mkdir()
    (tmp_path / 'good').mkdir()
    replay = service()
    summary = seed_from_bags([str(tmp_path / 'bad'), str(tmp_path / 'good')], EXPERIENCE_TYPE,
                             experience_intake(replay), open_bag=open_bag)
    assert summary.problems == [f'seed bag {tmp_path / "bad"}: not readable: no metadata.yaml and no .mcap file']
    assert len(replay) == 5


def test_the_message_limit_is_the_dds_sample_limit():
    assert max_message_bytes({}) == 16 * 2 ** 20
    assert max_message_bytes({'DCDRL_MAX_SAMPLE_SIZE': '500kB'}) == 500_000
    with pytest.raises(ValueError, match='DCDRL_MAX_SAMPLE_SIZE'):
        max_message_bytes({'DCDRL_MAX_SAMPLE_SIZE': 'lots'})


def segment_bytes(sequence, flags=0, action=0.5, device='d0'):
    segment = get_interface(SEGMENT_TYPE)(device_id=device, sequence=sequence, episode=0, policy_version=0,
                                          observation=np.full(10, 0.1 * sequence, np.float32),
                                          action=np.array([action], np.float32), flags=flags)
    return segment.serialize()


def test_segments_are_paired_and_refused_by_the_segment_learner(tmp_path):
    from dcdrl_cloud.segment_learner import SegmentLearner, SegmentLearnerConfig
    outputs = SimpleNamespace(publish_weights=print, publish_stats=print, publish_episode=print,
                              send_command=print, log=print)
    learner = SegmentLearner(SegmentLearnerConfig(output_dir=str(tmp_path / 'out'), tensorboard=False,
                                                  progress_period_s=0.0, device='cpu', buffer_size=1000,
                                                  critic_start=20, actor_start=20), outputs)
    records = [record(segment_bytes(0, SegmentFlag.EPISODE_START), SEGMENT_TYPE, '/dcdrl/segments')]
    records += [record(segment_bytes(k), SEGMENT_TYPE, '/dcdrl/segments') for k in range(1, 6)]
    records += [record(segment_bytes(6, action=np.nan), SEGMENT_TYPE, '/dcdrl/segments'),
                record(segment_bytes(7, action=3.0), SEGMENT_TYPE, '/dcdrl/segments')]
    (tmp_path / 'bag').mkdir()
    summary = seed_from_bags([str(tmp_path / 'bag')], SEGMENT_TYPE, segment_intake(learner),
                             open_bag=opener({str(tmp_path / 'bag'): MemoryBag(records)}))
    assert summary.transitions == len(learner.buffer) == 5   # six good segments pair into five transitions
    assert dict(summary.refused) == {'not_finite': 1, 'out_of_range': 1}
    assert dict(learner.rejected) == {'not_finite': 1, 'out_of_range': 1}   # the live counters
    learner.close()


@pytest.mark.dds
@pytest.mark.slow
def test_a_fresh_learner_trained_from_a_recording_alone_beats_the_untrained_policy_and_local_only(domain, tmp_path):
    # The suite's longest test (about 2 minutes on a busy 2-core machine), and why: 30 s of a running training
    # graph's experience (about 500 batches), then 6,000 updates of a fresh learner on it. It counts updates, not
    # seconds, so a slow machine trains as much as a fast one: offline, the dcdrl preset's actor first sits at
    # local-only (9.27, its tanh saturated) for 2,000-4,000 updates. TD3, not DDPG: offline, DDPG's overestimated
    # values of actions the bag lacks spread its result more (12 runs at 6,000 updates on four bags: TD3 4.9-7.8,
    # DDPG 5.3-8.9; untrained 10.34, local-only 9.27; docs/recording.md).
    # About one recording in ten (1 of 11 node runs so far) leaves the offline actor at local-only after 6,000
    # updates (9.27 exactly: its tanh saturated); a second recording is then made and trained on. The claim is the
    # product's (a recording alone trains a learner), not that every 30 s of experience is enough.
    outcomes = []
    for attempt in range(2):
        rows, untrained = _record_and_train_offline(domain, tmp_path / f'attempt_{attempt}')
        outcomes.append((rows['learned']['cost'], rows['local_only']['cost'], untrained))
        if rows['learned']['cost'] < min(rows['local_only']['cost'], untrained):
            break
    learned, local_only, untrained = outcomes[-1]
    assert learned < local_only, outcomes
    assert learned < untrained, outcomes


def _record_and_train_offline(domain: int, tmp_path: Path) -> tuple[dict, float]:
    """30 s of a training graph's experience into a bag, then a fresh replay node and learner on the bag alone:
    the final table's rows by policy and the cost of the learner's initial policy."""
    tmp_path.mkdir()
    bag = tmp_path / 'bag'
    # The recorded graph's learner stops at once (no final table or report: not what this test is about).
    params = tmp_path / 'train_fast.yaml'
    learner_block = '/**/learner:\n  ros__parameters:\n'
    params.write_text(FAST.read_text().replace(learner_block, learner_block + '    evaluate_on_stop: false\n'
                                                                              '    report: false\n'))
    experience = TopicRecorder(domain, namespace='/dcdrl')
    batches = experience.record(get_interface(EXPERIENCE_TYPE), 'experience', runtime.QoSProfile(depth=100),
                                lambda message: message.client_id)
    recorder = ChildProcess([*DCDRL, 'bag', 'record', '-o', str(bag), '/dcdrl/experience'], env=loopback_env(domain))
    graph = ChildProcess([*DCDRL, 'launch', 'dcdrl_cloud', 'train.launch.yaml', f'params_file:={params}',
                          f'output_dir:={tmp_path / "graph"}', 'duration_s:=0', 'exit_when_done:=false'],
                         env=loopback_env(domain))
    try:
        experience.wait_for(lambda: len(batches) >= 500, TIMEOUT, 'about 30 s of experience from two clients')
    finally:
        assert recorder.stop(timeout=30) == 0, '\n'.join(recorder.lines[-20:])
        graph.stop(timeout=60)
        experience.close()

    # A fresh replay buffer seeded from the bag and a fresh learner (the recorded graph's preset), no client: nothing
    # else feeds them.
    output = tmp_path / 'offline'
    replay = node_process('dcdrl_cloud', 'replay_buffer', 'replay_buffer', domain, FAST, f'output_dir:={output}',
                          f'seed_bags:=[{bag}]')
    learner = node_process('dcdrl_cloud', 'learner', 'learner', domain, FAST, f'output_dir:={output}',
                           'algorithm:=td3', f'max_updates:={OFFLINE_UPDATES}', 'duration_s:=0.0',
                           'exit_when_done:=true',
                           'eval_period_s:=600.0', 'oracle_episodes:=0', 'report:=false')
    try:
        seeded = replay.wait_for_line('seeded ', TIMEOUT)
        done = learner.wait_for_line('TRAINING DONE', TIMEOUT + 120)
        assert learner.process.wait(TIMEOUT) == 0
    finally:
        learner.stop(timeout=30)
        replay.stop(timeout=30)
    assert ' from 1 bag, refused 0' in seeded, seeded
    report = json.loads(next(line for line in replay.lines if line.startswith('REPORT '))[len('REPORT '):])
    assert report['transitions'] == report['seeded'] >= 4000, report   # the bag's experience and nothing else
    summary = json.loads(done.split('TRAINING DONE ', 1)[1])
    assert summary['finished_reason'] == 'updates' and summary['updates'] == OFFLINE_UPDATES, summary
    rows = {row['policy']: row for row in json.loads((output / 'evaluation.json').read_text())['rows']}
    untrained = _first_evaluation_cost(output)   # at start, before any update (eval_period_s: the only periodic one)
    return rows, untrained


def _first_evaluation_cost(output_dir: Path) -> float:
    """The learner's first evaluation: of its initial policy (taken before its first update)."""
    scalars = next(output_dir.glob('*/scalars.csv'))
    _, updates, _, cost = next(row.split(',') for row in scalars.read_text().splitlines() if ',eval/cost,' in row)
    assert int(updates) == 0, f'the first evaluation came after {updates} updates'
    return float(cost)


def test_a_real_bag_killed_mid_write_seeds_its_complete_chunks(tmp_path):
    from dcdrl_ros.bag.metadata import METADATA_FILE, TopicInfo
    from dcdrl_ros.bag.writer import BagWriter
    bag = tmp_path / 'bag'
    writer = BagWriter(bag)
    writer.add_topic(TopicInfo('/robot/experience', EXPERIENCE_TYPE))
    for sequence in range(80):   # about 28 KB each: several 768 KiB chunks
        writer.write('/robot/experience', experience_bytes(sequence, batch=500), sequence, sequence)
    writer.close()
    (bag / METADATA_FILE).unlink()   # what a SIGKILLed recorder leaves: no metadata.yaml, a cut last file
    mcap_file = next(bag.glob('*.mcap'))
    mcap_file.write_bytes(mcap_file.read_bytes()[:mcap_file.stat().st_size * 2 // 3])
    replay = service(capacity=50_000)
    summary = seed_from_bags([str(bag)], EXPERIENCE_TYPE, experience_intake(replay))
    assert 0 < summary.messages < 80 and summary.transitions == len(replay) == 500 * summary.messages
    assert len(summary.problems) == 1 and 'damaged' in summary.problems[0], summary.problems
    assert f'used the {summary.messages} messages recovered' in summary.problems[0]


@pytest.mark.dds
def test_the_replay_node_seeds_once_and_a_restart_restores_instead_of_seeding_again(domain, tmp_path):
    from dcdrl_ros.bag.metadata import TopicInfo
    from dcdrl_ros.bag.writer import BagWriter
    bag, output = tmp_path / 'bag', tmp_path / 'out'
    writer = BagWriter(bag)
    writer.add_topic(TopicInfo('/dcdrl/experience', EXPERIENCE_TYPE))
    for sequence in range(10):
        writer.write('/dcdrl/experience', experience_bytes(sequence), sequence, sequence)
    writer.close()
    for start, expected in ((1, 'seeded 50 transitions from 1 bag (1 not readable), refused 0'),
                            (2, 'seed_bags not read: 50 transitions restored from')):
        replay = node_process('dcdrl_cloud', 'replay_buffer', 'replay_buffer', domain, None, f'output_dir:={output}',
                              f'seed_bags:={bag},{tmp_path / "missing"}', 'snapshot_period_s:=0.0')
        try:
            started = replay.wait_for_line('replay_buffer started', TIMEOUT)
        finally:
            replay.stop(timeout=30)
        assert ', size 50, ' in started, (start, started)   # never 100: the bag is not stored twice
        assert any(expected in line for line in replay.lines), (start, replay.lines[:8])
        missing_line = f'seed bag {tmp_path / "missing"}: no such file or folder'
        assert any(missing_line in line for line in replay.lines) == (start == 1), replay.lines[:8]
