"""`make run`'s job end to end: the launched graph streams experience and the report adds up."""
import json
import subprocess
import sys

import pytest

from dcdrl_core.testing import fresh_domain_id, loopback_env

pytestmark = [pytest.mark.dds, pytest.mark.slow]


def test_main_job_reports_experience_from_both_clients(tmp_path):
    env = loopback_env(fresh_domain_id())
    result = subprocess.run([sys.executable, '-m', 'dcdrl_cloud.main_job', '--graph', 'stream', '--duration', '6', '--num-envs', '2', '--runs-dir', str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    saved = [line for line in result.stdout.splitlines() if line.startswith('report saved to ')][0]
    report = json.loads(open(saved.split('report saved to ', 1)[1]).read())
    assert report['rejected'] == 0 and report['transitions'] > 0
    assert set(report['clients']) == {'client_0', 'client_1'}
    assert all(c['transitions'] > 0 and c['lost_batches'] == 0 for c in report['clients'].values())
    assert report['replay_size'] == report['transitions']
    assert 'DC-DRL stream demo report' in result.stdout
