"""The client's exploration noise changes while it runs (central mode), checked as at start."""
import pytest

from dcdrl_sim.client_logic import ClientConfig, ClientLogic

SHORT = {'episode_length': 10}


def test_central_noise_scale_changes_for_the_next_steps():
    logic = ClientLogic(ClientConfig(num_envs=2, batch_steps=4, exploration='ou', exploration_noise=0.3),
                        env_kwargs=SHORT)
    try:
        assert logic.noise.scale == pytest.approx(0.3)
        logic.set_exploration_noise(0.05)
        assert logic.noise.scale == pytest.approx(0.05) and logic.config.exploration_noise == 0.05
        with pytest.raises(ValueError, match='exploration_noise'):
            logic.set_exploration_noise(-1.0)
        assert logic.noise.scale == pytest.approx(0.05)
    finally:
        logic.close()


def test_before_arming_the_new_scale_is_the_one_armed_with():
    logic = ClientLogic(ClientConfig(num_envs=1, batch_steps=2, exploration='gaussian'), env_kwargs=SHORT, arm=False)
    try:
        logic.set_exploration_noise(0.7)
        logic.arm()
        assert logic.noise.scale == pytest.approx(0.7)
    finally:
        logic.close()


def test_collective_mode_refuses_a_live_noise_change():
    logic = ClientLogic(ClientConfig(mode='collective', num_envs=1, batch_steps=2), env_kwargs=SHORT, arm=False)
    try:
        with pytest.raises(ValueError, match='only in central mode'):
            logic.set_exploration_noise(0.1)
    finally:
        logic.close()
