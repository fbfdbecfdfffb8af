"""Where the ahead-of-time build lives and what it records (``_compiled.json``:
the kernel sources' hash, and the event-density crossover measured on this
machine).  Shared by the build (``aot.py``), the measurement
(``calibrate.py``) and the readers, so none of them imports another for it."""
from __future__ import annotations

import json
import os

__all__ = ["HERE", "MODULE", "meta_path", "read_meta", "write_meta"]

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = "_compiled"


def meta_path(folder=None):
    return os.path.join(HERE if folder is None else folder, f"{MODULE}.json")


def read_meta(folder=None):
    """The build's record as a dict ({} when there is none or it is unreadable)."""
    try:
        with open(meta_path(folder)) as f:
            meta = json.load(f)
        return meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        return {}


def write_meta(meta, folder=None):
    """Write the record atomically (a temporary file, then a rename)."""
    path = meta_path(folder)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(tmp, path)
