"""Child processes by pid: whether one still runs, and stopping one started in its own session."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != 'Z'


def stop_session(process: subprocess.Popen, timeout: float) -> int | None:
    """SIGINT to the process group of ``process`` (started with start_new_session=True), then SIGKILL
    if it does not exit within ``timeout`` seconds; returns its exit code."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout)
    return process.returncode
