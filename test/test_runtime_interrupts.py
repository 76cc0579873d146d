"""Ctrl-C during a DDS take stops a node cleanly instead of crashing it (runtime/interrupts.py).

cyclonedds-python calls Python from C while it takes samples and crashes (SIGSEGV) when an
exception is raised there; a node stopped with SIGINT while samples arrive hit it now and then.
"""
import signal
import sys
import textwrap

import pytest

from dcdrl_ros.runtime import interrupts
from dcdrl_ros.testing import ChildProcess, fresh_domain_id, loopback_env

pytestmark = pytest.mark.dds

# The child takes bursts of samples while a 0.3 ms interval timer calls the installed SIGINT
# handler, so many interrupts arrive inside takes. Without the deferral most runs die within a
# few hundred bursts; with it, every interrupt becomes a KeyboardInterrupt after its take.
CHILD = textwrap.dedent('''
    import signal, sys
    from dcdrl_ros import runtime
    from dcdrl_ros.runtime.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String
    runtime.init(args=[])
    node = runtime.Node('interrupted')
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    publisher = node.create_publisher(String, 'burst', qos)
    subscription = node.create_subscription(String, 'burst', lambda m: None, qos)
    sigint = signal.getsignal(signal.SIGINT)
    armed = [False]
    def on_alarm(signum, frame):
        if armed[0]:
            sigint(signum, frame)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.0003, 0.0003)
    interrupted = 0
    for _ in range(int(sys.argv[1])):
        for _ in range(200):
            publisher.publish(String(data='x'))
        try:
            armed[0] = True
            subscription._take()
            armed[0] = False
        except KeyboardInterrupt:
            armed[0] = False
            interrupted += 1
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
    subscription._take()
    for _ in range(200):
        publisher.publish(String(data='x'))
    print(f'interrupted {interrupted} taken {len(subscription._take())}', flush=True)
    node.destroy_node()
    runtime.shutdown()
''')


def test_sigint_inside_takes_never_crashes_the_process():
    child = ChildProcess([sys.executable, '-c', CHILD, '800'], env=loopback_env(fresh_domain_id()))
    try:
        child.process.wait(120)
    finally:
        code = child.stop(timeout=10.0)
    assert code == 0, f'exit code {code} (-11: SIGSEGV):\n' + '\n'.join(child.lines[-30:])
    line = next(line for line in child.lines if line.startswith('interrupted'))
    interrupted, taken = int(line.split()[1]), int(line.split()[3])
    assert interrupted > 100, line   # the timer really interrupted takes
    assert taken == 200, line        # and the reader still works afterwards


@pytest.fixture
def fresh_state(monkeypatch):
    monkeypatch.setattr(interrupts, '_state', interrupts._InterruptState())
    return interrupts._state


def test_sigint_outside_a_take_raises_at_once(fresh_state):
    with pytest.raises(KeyboardInterrupt):
        interrupts.on_sigint(signal.SIGINT, None)


def test_sigint_inside_a_take_is_raised_when_the_take_ends(fresh_state):
    reached_end_of_section = False
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred_interrupts():
            with interrupts.deferred_interrupts():
                interrupts.on_sigint(signal.SIGINT, None)   # held back
            reached_end_of_section = True                  # inner end: still inside the outer
    assert reached_end_of_section
    assert not fresh_state.pending and fresh_state.depth == 0
    with interrupts.deferred_interrupts():  # nothing pending: the next section ends quietly
        pass


def test_handler_is_installed_only_over_the_default_or_ignored_handler(monkeypatch):
    installed = {}
    monkeypatch.setattr(interrupts.signal, 'signal', lambda signum, handler: installed.update({signum: handler}))
    for current, expected in ((signal.default_int_handler, True), (signal.SIG_IGN, True),
                              (interrupts.on_sigint, True), (lambda *a: None, False)):
        installed.clear()
        monkeypatch.setattr(interrupts.signal, 'getsignal', lambda signum, current=current: current)
        assert interrupts.install_sigint_handler() is expected
        assert (installed.get(signal.SIGINT) is interrupts.on_sigint) is expected
