"""The named values of the dcdrl_msgs message constants, for logic that imports no ROS.

The .msg files are the wire contract; this module is their one Python definition (the edge and the
cloud both import it, so the two ends cannot drift). test_protocol.py checks every member against
the constants of src/dcdrl_msgs/msg/*.msg. No import beyond the standard library: the edge loads it
on a Pi without torch or numpy.
"""
from __future__ import annotations

import enum
import numbers


class EdgeCommandKind(enum.IntEnum):
    """EdgeCommand.command: what the cloud (or a user) asks of edge controllers."""
    RESET = 1      # end the current episode now (truncated) and run the reset routine
    EVALUATE = 2   # run the next episode without exploration noise
    TRAIN = 3      # explore again (cancels a pending EVALUATE)
    HOLD = 4       # hold the safe action, start no more episodes
    RESUME = 5     # leave HOLD, start episodes again

    @property
    def label(self) -> str:
        return self.name.lower()


def parse_edge_command(value: object) -> EdgeCommandKind:
    """The command an EdgeCommand carries; ValueError for a bool, a non-integer or an unknown value."""
    if not isinstance(value, bool) and isinstance(value, numbers.Integral):
        try:
            return EdgeCommandKind(int(value))
        except ValueError:
            pass
    known = ', '.join(f'{kind.value} ({kind.label})' for kind in EdgeCommandKind)
    raise ValueError(f'unknown command {value!r}; expected one of {known}')


class SegmentFlag(enum.IntFlag):
    """TrajectorySegment.flags: bits of one control step."""
    EPISODE_START = 1
    TERMINATED = 2
    TRUNCATED = 4
    EVALUATION = 8


# A plain int: the complement of an IntFlag keeps only defined bits, so `flags & ~KNOWN` needs an int.
KNOWN_SEGMENT_FLAGS = sum(int(flag) for flag in SegmentFlag)


class LoopMode(enum.IntEnum):
    """LoopStats.mode: what the edge control loop is doing."""
    TRAIN = 0       # exploring with noise, streaming segments
    EVAL = 1        # noise-free (local weights file or an evaluation episode)
    FALLBACK = 2    # no usable policy yet: holding the safe action
    RESETTING = 3   # running the plant's reset routine between episodes
    HOLD = 4        # stopped by the cloud or the user: safe action, no episodes

    @property
    def label(self) -> str:
        return self.name.lower()


__all__ = ['EdgeCommandKind', 'KNOWN_SEGMENT_FLAGS', 'LoopMode', 'SegmentFlag', 'parse_edge_command']
