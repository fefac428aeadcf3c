"""Which frames rules may run on, and their columns.

The built-in frames are `analyzer.schema.FRAME_SCHEMAS`.  Further diagnostic frames (Redis
INFO, RabbitMQ diagnostics, ...) are registered with `register_frame`, or a whole mapping is
passed to the loaders as `schemas=`, which leaves global state alone.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from analyzer.schema import FRAME_SCHEMAS

Schema = Mapping[str, pl.DataType]

_EXTRA: dict[str, Schema] = {}


def register_frame(name: str, schema: Schema) -> None:
    """Make frame `name` with columns `schema` available to rules (`on = "name"`)."""
    if name in FRAME_SCHEMAS and dict(FRAME_SCHEMAS[name]) != dict(schema):
        raise ValueError(f"frame {name!r} is built in; its schema cannot be replaced")
    _EXTRA[name] = dict(schema)


def frame_schemas() -> dict[str, Schema]:
    """Built-in frames plus the registered ones, by name."""
    return {**FRAME_SCHEMAS, **_EXTRA}
