"""SIGINT/SIGTERM as a request to stop (dcdrl_ros.stop_signals) and ros.run_node's stop path."""
import os
import signal

import pytest

from dcdrl_ros.stop_signals import STOP_SIGNALS, StopSignals

WAIT_S = 10.0


@pytest.fixture
def handlers():
    """Puts back whatever SIGINT/SIGTERM handlers the test leaves."""
    saved = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_first_signal_requests_the_stop_and_later_ones_are_only_counted(handlers):
    stop = StopSignals()
    assert stop.install()
    os.kill(os.getpid(), signal.SIGINT)      # no KeyboardInterrupt
    assert stop.requested.wait(WAIT_S)
    assert stop.first is signal.SIGINT and stop.absorbed == 0
    os.kill(os.getpid(), signal.SIGTERM)     # neither the default exit
    os.kill(os.getpid(), signal.SIGINT)
    assert stop.first is signal.SIGINT and stop.absorbed == 2


def test_sigterm_alone_requests_the_stop(handlers):
    stop = StopSignals()
    stop.install()
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.requested.wait(WAIT_S) and stop.first is signal.SIGTERM


def test_uninstall_puts_back_the_previous_handlers_also_after_ignore_from_now(handlers):
    mine = lambda signum, frame: None  # noqa: E731
    signal.signal(signal.SIGINT, mine)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    stop = StopSignals()
    stop.install()
    assert signal.getsignal(signal.SIGINT) == stop._on_signal
    stop.ignore_from_now()
    assert all(signal.getsignal(signum) == signal.SIG_IGN for signum in STOP_SIGNALS)
    stop.uninstall()
    assert signal.getsignal(signal.SIGINT) is mine and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_install_outside_the_main_thread_changes_nothing(handlers):
    import threading
    before = signal.getsignal(signal.SIGINT)
    results = []
    thread = threading.Thread(target=lambda: results.append(StopSignals().install()))
    thread.start()
    thread.join(WAIT_S)
    assert results == [False] and signal.getsignal(signal.SIGINT) is before


@pytest.mark.dds
def test_run_node_stops_on_a_signal_and_a_second_one_does_not_cut_the_clean_up(handlers, domain, monkeypatch):
    """On our runtime, in this process: SIGTERM while spinning ends the spin loop, destroy_node runs
    once and to its end although a SIGINT arrives in its middle, and run_node returns 0."""
    monkeypatch.setenv('ROS_DOMAIN_ID', str(domain))
    from dcdrl_ros import ros
    assert ros.BACKEND == 'cyclone'   # .venv has no rclpy; test/test_ros2_stop.py runs nodes on it
    events = []

    class Stopper(ros.Node):
        def __init__(self):
            super().__init__('stopper')
            self.create_timer(0.05, self.tick)

        def tick(self):
            if not events:
                events.append('spinning')
                os.kill(os.getpid(), signal.SIGTERM)

        def destroy_node(self):
            events.append('destroy started')
            os.kill(os.getpid(), signal.SIGINT)   # as a launcher's relayed Ctrl-C would
            for _ in range(1000):                 # Python runs the handler between these bytecodes
                sum(range(100))
            events.append('destroy finished')
            super().destroy_node()

    assert ros.run_node(Stopper, ['stopper']) == 0
    assert events == ['spinning', 'destroy started', 'destroy finished']
    assert all(signal.getsignal(signum) == signal.SIG_IGN for signum in STOP_SIGNALS)   # until the process exits
