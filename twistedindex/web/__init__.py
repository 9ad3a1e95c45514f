"""
The HTTP face of the index.
"""

from __future__ import annotations

from .root import build_root

__all__ = ["build_root"]
