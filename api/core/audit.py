"""Moved to :mod:`api.audit`: the audit log writes a table, and :mod:`api.core` sits below the tables.

Only ``api.calls.service`` still imports it from here, until that module's rework; then this module
and its line in ``[tool.importlinter]`` go.
"""

from __future__ import annotations

from api.audit import audit

__all__ = ["audit"]
