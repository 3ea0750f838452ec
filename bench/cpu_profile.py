"""Run a module under cProfile, counting the CPU time of its main thread (the event loop).

    python bench/cpu_profile.py OUT.prof MODULE [ARGS …]    # like python -m MODULE ARGS

Profiling starts on SIGUSR1 and stops on SIGUSR2, which writes OUT.prof: so a Rasa replica is
profiled while it answers, not while TensorFlow builds its graphs at start-up. CPU time, not wall
time: on a busy 2-core machine a process preempted inside `socket.send` would otherwise seem to
spend its time there.
"""

from __future__ import annotations

import cProfile
import os
import runpy
import signal
import sys
import time


def main() -> None:
    out, module = sys.argv[1], sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    sys.path[0] = os.getcwd()  # as `python -m` would have it, instead of bench/
    profile = cProfile.Profile(time.thread_time)

    def start(*_: object) -> None:
        profile.enable()

    def stop(*_: object) -> None:
        profile.disable()
        profile.dump_stats(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
