"""typer command classes that show on/off flags bare in ``--help``.

typer prints a value type after every option, so ``--json`` and even ``--help``
read ``<bool>`` as though they took a value. Both CLIs (``ltxserve`` and ``ltx``)
use these classes; options that take a value keep their type.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup


def bare_flags(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    return params


class Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return bare_flags(super().get_params(ctx))


class Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return bare_flags(super().get_params(ctx))
