"""How the job under `make run` reads the launcher's lines: what reaches the screen in each mode, and the
one-line reason of a process that died."""
from dcdrl_cloud.graph_job import failure_reason, parse_line, screen_text

LAUNCHER_START = '[INFO] [learner-1]: process started with pid [29079]'
LAUNCHER_DEATH = "[ERROR] [client-1]: process has died [pid 7, exit code 1, cmd 'python -m x']."
ESCALATION = ("[ERROR] [learner-1]: process[learner-1] failed to terminate '30' seconds after receiving 'SIGINT', "
              "escalating to 'SIGTERM'")
LEARNER_INFO = '[learner-1] [INFO] [1796583271.618104935] [dcdrl.learner]: learner started: ddpg'
LEARNER_PROGRESS = '[learner-1] step 132 |     0.9s | critic_loss 11.07'
CLIENT_INFO = '[client-1] [INFO] [1796583273.893911600] [dcdrl.client_0]: acting with policy version 8'
CLIENT_WARN = '[client-2] [WARN] [1796583273.9] [dcdrl.client_1]: policy refused: wrong architecture'
REPLAY_REPORT = '[replay_buffer-1] REPORT {"transitions": 3876}'


def test_lines_are_told_apart():
    start = parse_line(LAUNCHER_START)
    assert (start.from_launcher, start.source, start.level) == (True, 'learner-1', 'INFO')
    info = parse_line(LEARNER_INFO)
    assert (info.from_launcher, info.source, info.level, info.text) == (False, 'learner-1', 'INFO',
                                                                        'learner started: ddpg')
    assert parse_line(LEARNER_PROGRESS).level == '' and parse_line(REPLAY_REPORT).text.startswith('REPORT ')
    assert parse_line('[learner-1] [FATAL] LearnerNode: bad').text == 'LearnerNode: bad'


def test_the_default_screen_shows_the_learner_and_problems_not_every_node_every_second():
    def shown(raw, mode='progress', stopping=False):
        return screen_text(parse_line(raw), mode, 'learner', stopping)

    assert shown(LEARNER_INFO) == '[learner] learner started: ddpg'
    assert shown(LEARNER_PROGRESS) == '[learner] step 132 |     0.9s | critic_loss 11.07'
    assert shown(CLIENT_WARN) == '[client-2] WARN: policy refused: wrong architecture'
    assert shown(ESCALATION).startswith('[launch] ERROR: process[learner-1] failed to terminate')
    for quiet in (CLIENT_INFO, REPLAY_REPORT, LAUNCHER_START, LAUNCHER_DEATH):  # the job tells deaths itself
        assert shown(quiet) is None
    assert shown('[learner-1] Traceback (most recent call last):', stopping=True) is None
    assert shown(LEARNER_PROGRESS, 'quiet') is None and shown(CLIENT_WARN, 'quiet') is not None
    assert shown(CLIENT_INFO, 'verbose') == CLIENT_INFO


def test_the_reason_of_a_death_is_its_most_telling_line():
    traceback = ['[client-1] Traceback (most recent call last):', '[client-1]   File "x.py", line 3, in <module>',
                 "[client-1] gymnasium.error.NameNotFound: Environment `Nope` doesn't exist.", '[client-1] ']
    assert failure_reason(traceback) == "gymnasium.error.NameNotFound: Environment `Nope` doesn't exist."
    assert failure_reason(['[learner-1] [FATAL] LearnerNode: batch_size must be an integer >= 1, got 0',
                           '[learner-1] bye']) == 'LearnerNode: batch_size must be an integer >= 1, got 0'
    assert failure_reason(['[x-1] last words']) == 'last words' and failure_reason([]) == 'no output'
