"""Which executable a core file was dumped by, from a `core.json` sidecar inside the bundle.

A bundle is untrusted: nothing it says may reach gdb's command line or name a file of the
machine the analysis runs on. So a sidecar's ``executable`` is a path *inside the bundle*,
relative to the sidecar's folder, and must be one of the bundle's own members (regular files;
the reader has refused links, devices and traversal already). An absolute path in a sidecar is
not used; the operator gives one with their own option (`Options.core_executable`,
``--core-executable``), which is the only way a file outside the bundle reaches gdb.

Sidecars looked for, first found wins: ``<core>.json``, ``<core stem>.json``, ``core.json`` in
the core's folder. Example: ``{"executable": "bin/python3.11"}``.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping

from analyzer.bundle import Member, safe_member_name

MAX_SIDECAR_BYTES = 64 << 10  # a sidecar is a few lines of JSON; anything bigger is not one


def _folder(name: str) -> str:
    """The member-name prefix of the core's folder: up to its last `/` or, inside an archive, `:`."""
    return name[:max(name.rfind("/"), name.rfind(":")) + 1]


def sidecar_names(core: str) -> list[str]:
    folder, base = _folder(core), core[len(_folder(core)):]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    names = [f"{folder}{base}.json", f"{folder}{stem}.json", f"{folder}core.json"]
    return list(dict.fromkeys(names))


def find_executable(core: str, members: Mapping[str, Member]) -> tuple[Member | None, list[str]]:
    """The member a sidecar names as the core's executable, and notes on what was not used."""
    for side in sidecar_names(core):
        member = members.get(side)
        if member is None:
            continue
        if member.size > MAX_SIDECAR_BYTES:
            return None, [f"{side}: not read as a core sidecar: larger than {MAX_SIDECAR_BYTES} bytes"]
        try:
            meta = json.loads(member.read())
        except (OSError, ValueError) as exc:
            return None, [f"{side}: not read as a core sidecar: {type(exc).__name__}: {exc}"]
        exe = meta.get("executable") if isinstance(meta, dict) else None
        if exe is None:
            continue
        return _member_named(exe, side, members)
    return None, []


def _member_named(exe: object, side: str, members: Mapping[str, Member]) -> tuple[Member | None, list[str]]:
    if not isinstance(exe, str) or not exe:
        return None, [f"{side}: \"executable\" is not a path; ignored"]
    if posixpath.isabs(exe) or (len(exe) > 1 and exe[1] == ":"):
        return None, [f"{side}: executable {exe!r} is outside the bundle and was not used (a bundle never "
                      f"names files of this machine); pass it yourself with --core-executable {exe}, or put "
                      "the executable in the bundle and name it relative to the sidecar"]
    rel = safe_member_name(exe)
    if rel is None:
        return None, [f"{side}: executable {exe!r} leaves the bundle; ignored"]
    name = _folder(side) + rel
    found = members.get(name)
    if found is None:
        return None, [f"{side}: executable {exe!r} is not a file of the bundle ({name!r} not found); "
                      "gdb reads the core without it"]
    return found, []
