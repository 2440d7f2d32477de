"""Reading case files: shared and per-department defaults merged under the case, errors naming the file and key."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from crmnb.errors import CaseFileError
from crmnb.params.model import CaseParams
from crmnb.paths import resolve


def _describe(err: dict[str, Any]) -> tuple[str, str]:
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
    kind = err["type"]
    if kind == "extra_forbidden":
        return loc, "unknown key"
    if kind == "missing":
        return loc, "missing key"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    found = err.get("input")
    if kind not in ("value_error",) and not isinstance(found, (dict, list)):
        msg = f"{msg} (found {found!r})"
    return loc, msg


def _suggest(loc: str, model: type[BaseModel]) -> str:
    """Return ' (did you mean X?)' for a misspelt key, else ''."""
    parts = loc.split(".")
    m: Any = model
    for p in parts[:-1]:
        field = m.model_fields.get(p) if isinstance(m, type) and issubclass(m, BaseModel) else None
        if field is None:
            return ""
        m = field.annotation
    if not (isinstance(m, type) and issubclass(m, BaseModel)):
        return ""
    close = difflib.get_close_matches(parts[-1], list(m.model_fields), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


MAX_PROBLEMS = 30
"""The most bad keys an invalid case file's message lists one by one."""


def parse_case(raw: Any, source: str | Path = "<case>") -> CaseParams:
    """Validate a case mapping (as read from YAML) into :class:`CaseParams`.

    Relative ``data.dir`` paths are taken relative to the case file's folder.
    Raises :class:`CaseFileError` naming the file and every bad key.
    """
    if not isinstance(raw, dict):
        raise CaseFileError(f"{source}: expected a mapping of keys to values, found {type(raw).__name__}")
    origins: dict[str, Path] = getattr(raw, "origins", {})
    merged_from: tuple[Path, ...] = getattr(raw, "defaults", ())
    raw = dict(raw)
    if "source_file" in raw:
        where = _where("source_file", origins, source)
        raise CaseFileError(f"{source}: key 'source_file': unknown key (it is set by crmnb){where}")
    try:
        case = CaseParams.model_validate({**raw, "source_file": str(source)})
    except ValidationError as exc:
        lines = []
        errors = exc.errors()
        for err in errors[:MAX_PROBLEMS]:
            loc, msg = _describe(err)
            hint = _suggest(loc, CaseParams) if msg == "unknown key" else ""
            where = _where(loc, origins, source) if loc else ""
            # a check across keys (intervention in the period…) has no single key: its message names them
            lines.append(f"  - key '{loc}': {msg}{hint}{where}" if loc else f"  - {msg}")
        if len(errors) > MAX_PROBLEMS:
            lines.append(f"  … and {len(errors) - MAX_PROBLEMS:,} more")
        merged = f" (merged with {', '.join(_short(f, source) for f in merged_from)})" if merged_from else ""
        raise CaseFileError(f"{source}: invalid case file{merged}\n" + "\n".join(lines)) from None
    if not case.data.dir.is_absolute():
        base = Path(source).parent if str(source) != "<case>" else Path.cwd()
        data = case.data.model_copy(update={"dir": (base / case.data.dir).resolve()})
        case = case.model_copy(update={"data": data})
    return case


DEFAULTS_FILE = "_defaults.yaml"
"""Shared defaults for every case file in the same folder."""

DEPARTMENTS_DIR = "_departments"
"""Folder (beside the case files) of per-department defaults, one ``<department>.yaml`` each."""


class CaseMapping(dict):
    """A case's mapping after merging defaults; remembers which file set each key.

    ``origins`` maps a dotted key (``thresholds.tiers.high_spend``) to the file that
    set it last; ``defaults`` lists the defaults files that were merged, in order.
    """

    def __init__(self, data: dict, origins: dict[str, Path], defaults: tuple[Path, ...]):
        super().__init__(data)
        self.origins = origins
        self.defaults = defaults


def deep_merge(base: Any, over: Any) -> Any:
    """Return ``over`` merged onto ``base``: mappings merge key by key, lists and scalars replace.

    >>> deep_merge({"a": {"x": 1, "y": 2}, "l": [1, 2]}, {"a": {"y": 3}, "l": [9]})
    {'a': {'x': 1, 'y': 3}, 'l': [9]}
    """
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = deep_merge(base[key], value) if key in base else value
        return out
    return over


def _record(origins: dict[str, Path], mapping: dict, file: Path, prefix: str = "", before: Any = None) -> None:
    """Note ``file`` as the origin of every key in ``mapping``, nested keys included.

    ``before`` is what the layers under this one had at this place: where ``mapping`` puts a
    scalar or list over one of its mappings, the keys below are noted as set by ``file`` too.
    Linear in the size of ``mapping`` and of what it replaces.
    """
    under = before if isinstance(before, dict) else {}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        origins[dotted] = file
        if isinstance(value, dict):
            _record(origins, value, file, dotted + ".", under.get(key))
        elif isinstance(under.get(key), dict):  # a scalar or list replaces whatever was below it
            _record(origins, under[key], file, dotted + ".")


def _where(loc: str, origins: dict[str, Path], source: str | Path) -> str:
    """Return ' (set in FILE)' when the key at ``loc`` (or what is below it) came from a defaults file."""
    if not origins:
        return ""
    parts = loc.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        below = {f for k, f in origins.items() if k == key or k.startswith(key + ".")}
        if below:
            others = sorted(str(f) for f in below if str(f) != str(source))
            if not others:
                return ""
            return (
                f" (set in {', '.join(others)})"
                if len(below) == len(others)
                else f" (set in {source} and {', '.join(others)})"
            )
    return ""


def _short(file: Path, source: str | Path) -> str:
    """Return ``file`` relative to the case file's folder when it is below it."""
    try:
        return str(Path(file).relative_to(Path(source).parent))
    except ValueError:
        return str(file)


MAX_ALIASES = 500
"""The most YAML aliases (``*name``) a case or defaults file may use."""

MAX_NODES = 200_000
"""The most values a case or defaults file may hold once its aliases are expanded."""


def _expanded_size(root: yaml.Node, file: Path) -> int:
    """Return how many values the YAML node tree holds with its aliases expanded (each shared node counted
    once per use, in time linear in the file); raise CaseFileError past the limits."""
    sizes: dict[int, int] = {}
    aliases = 0

    def size(node: yaml.Node, open_: set[int]) -> int:
        nonlocal aliases
        key = id(node)
        if key in sizes:
            aliases += 1
            if aliases > MAX_ALIASES:
                raise CaseFileError(
                    f"{file}: uses more than {MAX_ALIASES} YAML aliases (*name); write the values out instead"
                )
            return sizes[key]
        if key in open_:
            raise CaseFileError(f"{file}: a YAML alias refers to a value that contains it; write the values out")
        open_.add(key)
        children = node.value if isinstance(node, yaml.SequenceNode) else []
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        n = 1 + sum(size(c, open_) for c in children)
        open_.discard(key)
        sizes[key] = n
        if n > MAX_NODES:
            how = " once its YAML aliases (*name) are expanded" if aliases else ""
            raise CaseFileError(f"{file}: holds more than {MAX_NODES:,} values{how}; a case file that large is refused")
        return n

    return size(root, set())


def _safe_load(text: str, file: Path) -> Any:
    """Return the YAML document in ``text``, as ``yaml.safe_load`` would, refusing alias bombs before building it."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # libyaml's parser when there is one: 10x faster
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, file)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _read_yaml(file: Path, what: str) -> Any:
    try:
        return _safe_load(file.read_text(encoding="utf-8"), file)
    except yaml.YAMLError as exc:
        raise CaseFileError(f"{file}: not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise CaseFileError(f"{file}: not UTF-8 text; save the {what} as UTF-8") from None
    except RecursionError:
        raise CaseFileError(f"{file}: nested too deeply to be a case file") from None


def _read_defaults(file: Path, forbidden: tuple[str, ...]) -> dict:
    raw = _read_yaml(file, "defaults file")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CaseFileError(f"{file}: expected a mapping of keys to values, found {type(raw).__name__}")
    for key in forbidden:
        if key in raw:
            raise CaseFileError(f"{file}: key '{key}' cannot be a default; set it in each case file")
    return raw


def department_defaults_file(folder: Path, department: str) -> Path | None:
    """Return ``<folder>/_departments/<department>.yaml`` when it exists (Unicode names compared in NFC form)."""
    import unicodedata

    if not department or "/" in department or "\\" in department or department.startswith("."):
        return None
    base = folder / DEPARTMENTS_DIR
    exact = base / f"{department}.yaml"
    if exact.is_file():
        return exact
    if not base.is_dir():
        return None
    wanted = unicodedata.normalize("NFC", department)
    for f in sorted(base.glob("*.yaml")):  # a file name written in another normal form (macOS writes NFD)
        if unicodedata.normalize("NFC", f.stem) == wanted:
            return f
    return None


def merged_defaults(folder: Path, department: str | None = None) -> dict:
    """Return the defaults a case file in ``folder`` of ``department`` gets: shared, then the department's."""
    out: dict = {}
    shared = folder / DEFAULTS_FILE
    if shared.is_file():
        out = deep_merge(out, _read_defaults(shared, forbidden=("case_id", "source_file")))
    dept = department_defaults_file(folder, department) if department else None
    if dept is not None:
        out = deep_merge(out, _read_defaults(dept, forbidden=("case_id", "department", "source_file")))
    return out


def read_case_mapping(path: str | Path) -> tuple[dict, Path]:
    """Read a case file's YAML mapping merged onto its defaults, and return it with the file's resolved path.

    Defaults come from ``_defaults.yaml`` beside the case file, then
    ``_departments/<department>.yaml``; the case file wins. Mappings merge key by
    key; lists and scalars replace. The result is a :class:`CaseMapping` that knows
    which file set each key, so validation errors can name it.
    """
    file = resolve(path)
    if not file.is_file():
        raise CaseFileError(f"{path}: case file not found (looked for {file})")
    raw = _read_yaml(file, "case file")
    if not isinstance(raw, dict):
        return raw, file  # parse_case says what is wrong with it
    shared = file.parent / DEFAULTS_FILE
    layers: list[tuple[Path, dict]] = []
    if shared.is_file():
        layers.append((shared, _read_defaults(shared, forbidden=("case_id", "source_file"))))
    department = raw.get("department", layers[0][1].get("department") if layers else None)
    dept = department_defaults_file(file.parent, department) if isinstance(department, str) else None
    if dept is not None:
        layers.append((dept, _read_defaults(dept, forbidden=("case_id", "department", "source_file"))))
    merged: dict = {}
    origins: dict[str, Path] = {}
    for source, layer in [*layers, (file, raw)]:
        _record(origins, layer, source, before=merged)
        merged = deep_merge(merged, layer)
    return CaseMapping(merged, origins, tuple(f for f, _ in layers)), file


def case_settings(path: str | Path) -> dict:
    """Return the case's settings as plain JSON values (dates as ISO text), as the runner passes them to notebooks."""
    import json

    raw, _ = read_case_mapping(path)
    return json.loads(json.dumps(raw, default=str))


def load_case(path: str | Path, settings: dict | None = None) -> CaseParams:
    """Read and validate the case file at ``path`` into :class:`CaseParams`.

    ``settings``, when given, is the case's mapping as the runner passed it (dates may
    be text); it is validated instead of re-reading the file.
    """
    if settings is not None:
        return parse_case(settings, resolve(path))
    raw, file = read_case_mapping(path)
    return parse_case(raw, file)
