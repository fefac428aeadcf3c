"""Help text as command-line tools write it: `PATH...`, `--rules DIR`, `--debug`.

Typer labels each parameter with its Python annotation (`<list[Path]>`, `<bool>`, `<str>`) and
writes a required variadic argument as `{PATH...}...`. The command and group classes here draw the
same help with the names a user types instead: a metavar when the parameter has one, nothing after
a flag, click's type name (`PATH`, `TEXT`) otherwise, arguments in capitals, and `PATH...` /
`[DIR...]` in the usage line.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

# Python element types as click names them in its own help
TYPE_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "Path": "PATH"}


def _type_name(param: TyperArgument | TyperOption) -> str:
    bare = param.bare_type().removeprefix("list[").removesuffix("]")
    return TYPE_NAMES.get(bare, bare.upper())


class _PlainArgument(TyperArgument):
    @property
    def display_name_raw(self) -> str:
        return self.metavar if self.metavar is not None else self.name.upper()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the name column already shows the metavar

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if self.nargs != 1 and not name.endswith("..."):
            name += "..."
        return name if self.required else f"[{name}]"


class _PlainOption(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        if self.metavar is not None:
            return self.metavar
        if self.is_flag or self.count:
            return None
        return _type_name(self)


def plain(params: list[Any]) -> list[Any]:
    """`params` relabelled in place (their class swapped for one that draws plain labels)."""
    for p in params:
        if type(p) is TyperArgument:
            p.__class__ = _PlainArgument
        elif type(p) is TyperOption:
            p.__class__ = _PlainOption
    return params


class PlainCommand(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return plain(super().get_params(ctx))


class PlainGroup(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return plain(super().get_params(ctx))
