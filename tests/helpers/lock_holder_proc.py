"""Another operator's tuiapp process holding the state file lock (run as a script).

    python tests/helpers/lock_holder_proc.py STATE_LOCK_PATH OPERATOR SECONDS

Takes the lock as ``OPERATOR`` (the lock file names who holds it), prints
``locked PID``, holds it for SECONDS (0: until a line arrives on stdin), releases it
and prints ``released``. The hold is the scenario under test, not a synchronisation:
the test waits on these lines.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tuiapp.filelock import FileLock


def main() -> None:
    path, operator, seconds = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    FileLock.set_operator(operator)
    lock = FileLock(path)
    lock.acquire()
    print(f"locked {os.getpid()}", flush=True)
    if seconds > 0:
        time.sleep(seconds)
    else:
        sys.stdin.readline()
    lock.release()
    print("released", flush=True)


if __name__ == "__main__":
    main()
