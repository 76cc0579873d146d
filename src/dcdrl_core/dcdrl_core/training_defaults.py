"""The defaults the whole DC-DRL training graph shares, each defined once.

`make run` (dcdrl_cloud.main_job), every node of the graph (replay buffer, learner, parameter
server, simulated client) and the stream demo read them from here, so a node started by hand next
to a launched graph builds the same networks. The launch files (launch/train.launch.yaml,
launch/stream_demo.launch.yaml), their config files and README.md cannot import Python: they state
the same values as text, and test/test_training_defaults.py fails when that text and this module
disagree.
"""

ENV_ID = 'dcdrl_sim/MecOffloadScores-v0'
"""One offload score per user: DDPG learns it far faster than the paper's encoding (docs/decisions.md)."""
PAPER_ENV_ID = 'dcdrl_sim/MecOffload-v0'
"""The paper's 2N action encoding (`env_id:=` / `--env-id` picks it)."""
MODE = 'central'
NUM_CLIENTS = 2
DURATION_S = 240.0
SEED = 0
GAMMA = 0.9                     # the dcdrl preset's discount, stored with every 1-step transition
NETWORK_PRESET = 'dcdrl'        # DC-DRL's 400-300 LayerNorm networks
OUTPUT_DIR = 'runs/train'       # where a launched or hand-started graph writes (make run: its run folder)
EXPECTED_MODELS = NUM_CLIENTS + 1   # collective mode: a generation closes with every client and the learner
EVAL_PERIOD_S = 20.0            # the learner's noise-free evaluation period
STREAM_NUM_ENVS = 8             # stream demo: environment copies per client
