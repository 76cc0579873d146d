"""pid_alive and stop_session on real child processes."""
import subprocess
import sys
import time

from dcdrl_ros.processes import pid_alive, stop_session

TIMEOUT = 30.0


def test_pid_alive_is_true_while_a_child_runs_and_false_once_it_is_a_zombie_or_reaped():
    child = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'], stdin=subprocess.PIPE)
    assert pid_alive(child.pid)
    child.stdin.close()  # the child ends; not waited for, it stays a zombie
    deadline = time.monotonic() + TIMEOUT
    while pid_alive(child.pid):
        assert time.monotonic() < deadline, 'the child did not end'
        time.sleep(0.05)
    child.wait(TIMEOUT)
    assert not pid_alive(child.pid)


def test_stop_session_interrupts_the_group_and_kills_what_ignores_sigint():
    polite = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], start_new_session=True)
    assert stop_session(polite, TIMEOUT) != 0 and polite.poll() is not None
    stubborn = subprocess.Popen(
        [sys.executable, '-c', 'import signal, sys, time; signal.signal(signal.SIGINT, signal.SIG_IGN); '
         'print("ready", flush=True); time.sleep(600)'], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert stubborn.stdout.readline().strip() == 'ready'
    assert stop_session(stubborn, 1.0) == -9
    assert stop_session(stubborn, 1.0) == -9  # stopping again just reports how it ended
