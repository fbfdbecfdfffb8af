"""A user's model factory named on the command line, ``MODULE:FACTORY``.

``MODULE`` is a ``.py`` file (its folder is on ``sys.path`` while it loads)
or an importable module; ``FACTORY`` the function in it that returns the
model.  Shared by ``lifgrad verify MODULE:FACTORY`` and ``lifgrad diagnose
MODULE:FACTORY``.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys


def call_factory(target: str):
    """Import ``MODULE`` of ``target`` = ``MODULE:FACTORY`` and return
    ``FACTORY()``; ValueError / FileNotFoundError naming what is wrong."""
    mod_name, _, fn_name = str(target).rpartition(":")
    if not mod_name or not fn_name:
        raise ValueError(f"target: expected MODULE:FACTORY (a .py file or an importable module "
                         f"and the function that returns the model), got {target!r}")
    if mod_name.endswith(".py") or os.path.sep in mod_name:
        if not os.path.isfile(mod_name):
            raise FileNotFoundError(f"target: no file {mod_name!r}")
        spec = importlib.util.spec_from_file_location("lifgrad_user_model", mod_name)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, os.path.dirname(os.path.abspath(mod_name)))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.pop(0)
    else:
        module = importlib.import_module(mod_name)
    factory = getattr(module, fn_name, None)
    if not callable(factory):
        raise ValueError(f"target: {mod_name} has no function {fn_name!r}")
    return factory()
