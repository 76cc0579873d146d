"""Each env's comparison policies live with the envs: MEC envs (found by their entry point) get the
four baselines and the oracle, any other env a seeded random policy; the table files are strict JSON."""
import json
import math

import gymnasium
import numpy as np

import dcdrl_sim  # noqa: F401  (registers the environments)
from dcdrl_sim.comparison import (
    COMPARISONS,
    EVALUATION_JSON,
    EVALUATION_MD,
    baseline_factories,
    final_evaluation,
    has_oracle,
    write_evaluation,
)


def test_every_mec_env_is_compared_with_the_mec_baselines_and_the_oracle():
    assert set(COMPARISONS) == {'dcdrl_sim/MecOffload-v0', 'dcdrl_sim/MecOffloadScores-v0'}
    for env_id in COMPARISONS:
        assert has_oracle(env_id)
        assert list(baseline_factories(env_id)) == ['local_only', 'full_offload', 'random', 'greedy']


def test_another_env_gets_a_seeded_random_policy_and_no_oracle():
    env_id = 'dcdrl_sim/CartPoleSwingUp-v0'
    assert not has_oracle(env_id) and list(baseline_factories(env_id)) == ['random']
    actions = []
    for _ in range(2):
        env = gymnasium.make(env_id)
        policy = baseline_factories(env_id, seed=7)['random'](env)
        actions.append(policy(None))
        env.close()
    assert np.array_equal(actions[0], actions[1])   # the seed makes the random row repeatable
    results = final_evaluation(env_id, lambda obs: np.zeros(1, np.float32), episodes=1, oracle_episodes=3, seed=0)
    assert [r.name for r in results] == ['learned', 'random']


def test_write_evaluation_writes_strict_json_and_the_markdown_table(tmp_path):
    env_id = 'dcdrl_sim/CartPoleSwingUp-v0'
    results = final_evaluation(env_id, lambda obs: np.zeros(1, np.float32), episodes=1, oracle_episodes=0, seed=0)
    json_path, md_path = write_evaluation(tmp_path, results, {'env_id': env_id, 'version': 3, 'nan': math.nan})
    assert json_path.name == EVALUATION_JSON and md_path.name == EVALUATION_MD
    data = json.loads(json_path.read_text())
    assert data['nan'] is None and [row['policy'] for row in data['rows']] == ['learned', 'random']
    assert '| learned |' in md_path.read_text() and 'version 3' in md_path.read_text()
