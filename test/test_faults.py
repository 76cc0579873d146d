"""Hard faults of the training graph: nodes killed and restarted.

The learner and the replay buffer are killed with SIGKILL (no clean-up at all) while a client
streams, then restarted: versions continue strictly upward (never reused), and every transition
the replay buffer had reported as stored before the kill is there again (snapshot + journal).
Clean restarts and a killed client: test/test_training_graph.py; a cut link: test/test_multihost.py;
a killed face_server: test/test_face_testbed.py.
"""
import os
import re
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_training_graph import TIMEOUT, Monitor, _run  # noqa: E402  (the graph's test helpers)

pytestmark = [pytest.mark.dds, pytest.mark.slow]



def test_learner_and_replay_killed_hard_lose_nothing_and_versions_never_repeat(domain, tmp_path):
    monitor = Monitor(domain)
    replay = _run('dcdrl_cloud', 'replay_buffer', 'replay_buffer', domain, tmp_path, 'snapshot_period_s:=3600.0')
    learner = _run('dcdrl_cloud', 'learner', 'learner', domain, tmp_path, 'duration_s:=0.0',
                   'checkpoint_period_s:=3600.0')
    client = _run('dcdrl_sim', 'client', 'client_0', domain, tmp_path, 'client_id:=client_0')
    restarted = []
    try:
        # Long snapshot and checkpoint periods: everything since start exists only in the journal,
        # and every version after the first checkpoint-less publication only in published_version.
        monitor.wait_for(lambda: len(set(monitor.policy_versions)) >= 5, what='five versions')
        monitor.wait_for(lambda: monitor.replay_sizes and monitor.replay_sizes[-1] >= 400, what='400 stored')
        for process in (learner, replay):
            os.kill(process.pid, signal.SIGKILL)
            process.process.wait(TIMEOUT)
        reported = max(monitor.replay_sizes)
        last_version = max(monitor.policy_versions)
        seen = len(monitor.policy_versions)
        replay = _run('dcdrl_cloud', 'replay_buffer', 'replay_buffer', domain, tmp_path, 'snapshot_period_s:=3600.0')
        learner = _run('dcdrl_cloud', 'learner', 'learner', domain, tmp_path, 'duration_s:=0.0')
        restarted = [replay, learner]
        line = replay.wait_for_line('replay_buffer started', TIMEOUT)
        restored = int(re.search(r'size (\d+)', line).group(1))
        monitor.wait_for(lambda: len(monitor.policy_versions) > seen, what='a version from the restarted learner')
    finally:
        for process in [client, *restarted, learner, replay]:
            process.stop()
        monitor.close()
    assert restored >= reported, f'{reported} transitions reported before the kill, {restored} after restart'
    assert any('from the journal' in line for line in replay.lines), replay.lines[-20:]
    after = monitor.policy_versions[seen:]
    assert min(after) > last_version, f'versions reused after the kill: {last_version} then {after[:5]}'
