"""How ipydistribute plugs into IPython: ``%load_ext ipydistribute``."""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]

_MAGIC_NAMES = {"line": ("distribute", "cluster"), "cell": ("distribute",)}


def load_ipython_extension(shell: Any) -> None:
    """Register the magics (called by ``%load_ext``; loading twice is harmless)."""
    from ..kernel_magics import ClusterMagics, DistributeMagics
    from ..kernel_magics.debug_magic import install_debug

    shell.register_magics(DistributeMagics)
    shell.register_magics(ClusterMagics)
    install_debug(shell)  # %debug re-runs a failed item here (IPython's %debug for anything else)
    from ..kernel_magics.prompt import track_prompts

    track_prompts(shell)  # labels and tracebacks say the prompt's number
    from .shutdown import install_shutdown_hook

    install_shutdown_hook(shell)  # frozen outputs, the cluster closed, a quick exit


def unload_ipython_extension(shell: Any) -> None:
    """Remove the magics (``%unload_ext``); the cluster keeps running until stopped."""
    from ..kernel_magics.debug_magic import uninstall_debug

    uninstall_debug(shell)
    magics = shell.magics_manager.magics
    for kind, names in _MAGIC_NAMES.items():
        for name in names:
            magics[kind].pop(name, None)
    registry = shell.magics_manager.registry
    for cls_name in ("DistributeMagics", "ClusterMagics"):
        registry.pop(cls_name, None)
