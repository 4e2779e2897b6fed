"""The configuration reference: every key with its default, env var and description, as markdown.

One renderer for ``docs/configuration.md`` (``python -m kaizen_pipeline.settings --write`` / ``--check``)
and ``kaizen config --reference``. Only the models are read, never a config file or the environment, so
no configured value (secrets included) can reach the text.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from kaizen_pipeline.settings._base import SECRET_KEYS, env_name, list_item_model, model_of
from kaizen_pipeline.settings.model import Settings

DOCS_PATH = Path("docs") / "configuration.md"
WRITE_COMMAND = "python -m kaizen_pipeline.settings --write"


@dataclass(frozen=True)
class ConfigKey:
    """One config key: ``default`` is rendered (``(env only)`` for a secret, never a value)."""

    key: str
    default: str
    env_var: str
    description: str
    item_model: type[BaseModel] | None = field(default=None, compare=False)
    items: tuple[BaseModel, ...] = field(default=(), compare=False)


@dataclass
class _Section:
    name: str  # dotted; "" is the top level
    doc: str
    keys: list[ConfigKey]


def _shown_default(key: str, default: Any) -> str:
    if key in SECRET_KEYS:
        return "(env only)"
    if isinstance(default, BaseModel):
        default = default.model_dump(mode="json")
    return json.dumps(default, default=str)


def _doc(model: type[BaseModel]) -> str:
    doc = model.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if doc else ""


def _sections(model: type[BaseModel], prefix: str = "") -> list[_Section]:
    """The model's own keys as one section, then each nested section (in field order)."""
    own = _Section(prefix.rstrip("."), _doc(model) if prefix else "", [])
    nested: list[_Section] = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = model_of(info.annotation)
        if sub is not None:
            nested.extend(_sections(sub, key + "."))
            continue
        default = info.get_default(call_default_factory=True)
        item_model = list_item_model(info.annotation)
        own.keys.append(
            ConfigKey(
                key=key,
                default=_shown_default(key, default),
                env_var=env_name(key),
                description=info.description or "",
                item_model=item_model,
                items=tuple(default) if item_model is not None else (),
            )
        )
    return ([own] if own.keys else []) + nested


def config_reference() -> list[ConfigKey]:
    """Every config key (nested sections flattened to dotted keys), in model order."""
    return [key for section in _sections(Settings) for key in section.keys]


def escape(text: str) -> str:
    """``text`` made safe for one markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{escape(text)}`" if text else ""


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return escape(f"{value:g}")
    if isinstance(value, bool | int):
        return escape(json.dumps(value))
    return escape(str(value))


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces as dashes."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def _list_table(key: ConfigKey) -> list[str]:
    """A list-of-models key: one row per default entry, one column per field, then the fields."""
    assert key.item_model is not None
    fields = key.item_model.model_fields
    lines = [f"### `{key.key}` defaults", ""]
    doc = _doc(key.item_model)
    if doc:
        lines += [escape(doc), ""]
    lines += _table(list(fields), [[_value(getattr(item, name)) for name in fields] for item in key.items])
    lines += ["", f"Fields of one `{key.key}` entry:", ""]
    rows = []
    for name, info in fields.items():
        default = "required" if info.is_required() else _code(_shown_default("", info.get_default()))
        rows.append([f"`{name}`", default, escape(info.description or "")])
    return [*lines, *_table(["field", "default", "description"], rows), ""]


def render_reference() -> str:
    """The whole reference as markdown (the text of docs/configuration.md)."""
    lines = [
        "# Configuration reference",
        "",
        f"<!-- Generated from kaizen_pipeline/settings/ by `{WRITE_COMMAND}`; do not edit by hand. -->",
        "",
        "Every key below can be set in `config.yaml` (the file named by `KAIZEN_CONFIG`, default "
        "`./config.yaml`) or by its environment variable, which wins over the file. In the environment, "
        "lists, dicts and whole sections take JSON values. Secrets are read from the environment only: "
        "their default shows `(env only)`. An unknown key or variable fails at load, naming it.",
        "",
        "`kaizen config` prints the effective configuration (secrets masked).",
        "",
    ]
    for section in _sections(Settings):
        title = f"`{section.name}`" if section.name else "Top level"
        lines += [f"## {title}", ""]
        if section.doc:
            lines += [escape(section.doc), ""]
        rows = []
        for key in section.keys:
            default = key.default if key.key in SECRET_KEYS else _code(key.default)
            if key.item_model is not None:
                heading = f"`{key.key}` defaults"
                default = f"{len(key.items)} entries: [table below](#{_anchor(heading)})"
            rows.append([f"`{key.key}`", default, f"`{key.env_var}`", escape(key.description)])
        lines += [*_table(["key", "default", "env var", "description"], rows), ""]
        for key in section.keys:
            if key.item_model is not None:
                lines += _list_table(key)
    return "\n".join(lines).rstrip("\n") + "\n"


def write_reference(path: Path = DOCS_PATH) -> Path:
    """Write the reference to ``path`` (its directory is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_reference(), encoding="utf-8")
    return path


def reference_is_current(path: Path = DOCS_PATH) -> bool:
    """Whether ``path`` holds exactly the reference the models generate."""
    return path.exists() and path.read_text(encoding="utf-8") == render_reference()
