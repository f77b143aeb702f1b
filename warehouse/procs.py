"""Is a process alive? (Staging folders, temporary database files and run rows left by a killed
process are cleaned up only when the process that made them is gone.)"""

from __future__ import annotations

import os


def pid_alive(pid: int | str) -> bool:
    """True while a process with this id exists on this host (or when the id is unreadable: then
    nothing is cleaned up); a pid is read from a file Taomi wrote, so a string is accepted."""
    try:
        os.kill(int(pid), 0)
        return True
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
