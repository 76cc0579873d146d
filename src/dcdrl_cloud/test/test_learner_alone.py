"""A learner started alone (no replay buffer): it says what it waits for instead of printing NaN losses,
and its learning rates are parameters (`-p actor_lr:=...`; the default 0 stands for the network preset's)."""
import pytest

from dcdrl_ros.testing import node_process, parameter_session

pytestmark = pytest.mark.dds
TIMEOUT = 90.0   # torch and the environment load in the child on a shared 2-core machine


@pytest.fixture
def session(monkeypatch):
    """A parameter client of ours on a fresh loopback domain: (domain, Session)."""
    with parameter_session(monkeypatch) as made:
        yield made


def test_a_learner_alone_waits_visibly_and_takes_its_learning_rates_as_parameters(session, tmp_path):
    from dcdrl_ros.runtime.parameters import value_from_message
    domain, params = session
    with node_process('dcdrl_cloud', 'learner', 'learner', domain, None, f'output_dir:={tmp_path}',
                      'tensorboard:=false', 'eval_period_s:=0.0', 'progress_period_s:=1.0', 'actor_lr:=0.0005',
                      'evaluate_on_stop:=false', 'report:=false') as learner:
        line = learner.wait_for_line('waiting for the replay buffer', TIMEOUT)
        assert line.endswith('waiting for the replay buffer (nothing on replay/stats yet: is it running, '
                             'in this namespace?)')
        client = params.client('/dcdrl/learner')
        values = client.call('get_parameters', names=['actor_lr', 'critic_lr']).values
        assert [value_from_message(v)[1] for v in values] == [0.0005, 0.0]   # critic_lr 0: the preset's
        assert learner.stop(TIMEOUT) == 0
    assert not [line for line in learner.lines if 'critic_loss' in line or 'nan' in line.lower()]
