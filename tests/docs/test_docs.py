"""The docs stay true: hookspecs and config keys documented, examples run, links resolve."""

from __future__ import annotations

import re
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from fustor_agent_sdk import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs"
TEST_ONLY_DISTRIBUTIONS = {"fustor-driver-testonly"}
RUNNABLE = re.compile(
    r"<!-- runnable(?:: (?P<kind>\w+))? -->\s*\n```python\n(?P<code>.*?)\n```", re.DOTALL
)


def _all_docs_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))


def _backticked_words(text: str) -> set[str]:
    """Every identifier written inside `code spans` or fenced code blocks."""
    words: set[str] = set()
    for block in re.findall(r"```.*?```", text, re.DOTALL):
        words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", block))
    for span in re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL)):
        words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span))
    return words


def _nested_models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_nested_models(arg))
    return found


def config_keys(model: type[BaseModel], prefix: str = "") -> dict[str, str]:
    """``key -> dotted location`` of every field of ``model``, recursively."""
    keys: dict[str, str] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        keys.setdefault(key, f"{prefix}{key}")
        for nested in _nested_models(field.annotation):
            for sub, where in config_keys(nested, f"{prefix}{key}.").items():
                keys.setdefault(sub, where)
    return keys


def _host_keys() -> dict[str, str]:
    from fustor_agent.config import layout, legacy
    from fustor_agent.config.models import ConsoleSettings, PipeEntry, SenderEntry, SourceEntry

    keys = {key: key for key in layout._TOP_KEYS}
    keys.update(config_keys(SourceEntry, "sources[]."))
    keys.update(config_keys(SenderEntry, "senders[]."))
    keys.update(config_keys(PipeEntry, "pipes[]."))
    keys.update(config_keys(ConsoleSettings, "console."))
    for group in ("_SOURCE_KEYS", "_SENDER_KEYS", "_PIPE_KEYS", "_TOP_KEYS"):
        keys.update({key: f"agent-config/*.yaml: {key}" for key in getattr(legacy, group)})
    return keys


def _driver_keys() -> dict[str, str]:
    from fustor_agent.plugins import load_registry

    registry = load_registry()
    keys: dict[str, str] = {}
    drivers = [("source", n, c) for n, c in registry.sources.items()]
    drivers += [("sender", n, c) for n, c in registry.senders.items()]
    for kind, name, cls in drivers:
        if registry.origin[(kind, name)] in TEST_ONLY_DISTRIBUTIONS:
            continue
        keys.update(config_keys(cls.config_model, f"{kind} {name}: config."))
    return keys


def test_the_config_walk_finds_nested_driver_params() -> None:
    class Inner(BaseModel):
        deep: int = 1

    class Outer(BaseModel):
        top: str = ""
        driver_params: Inner | None = None
        many: list[Inner] = []

    assert config_keys(Outer) == {
        "top": "top",
        "driver_params": "driver_params",
        "deep": "driver_params.deep",
        "many": "many",
    }


def test_every_hookspec_is_documented_in_driver_design() -> None:
    specs = [
        name
        for name, obj in vars(hookspecs).items()
        if isinstance(obj, types.FunctionType) and hasattr(obj, "fustor_spec")
    ]
    assert specs, "no hookspec found: the marker attribute changed?"
    text = (DOCS / "driver_design.md").read_text(encoding="utf-8")
    missing = [name for name in specs if f"`{name}()`" not in text]
    assert not missing, f"hookspecs not documented in docs/driver_design.md: {missing}"


@pytest.mark.parametrize("which", ["host", "drivers"])
def test_every_config_key_is_documented(which: str) -> None:
    keys = _host_keys() if which == "host" else _driver_keys()
    assert len(keys) > 5
    documented = _backticked_words(_all_docs_text())
    missing = sorted(where for key, where in keys.items() if key not in documented)
    assert not missing, f"config keys not documented (as `code`) in docs/*.md: {missing}"


def _blocks(name: str) -> list[tuple[str, str]]:
    text = (DOCS / name).read_text(encoding="utf-8")
    return [(m.group("kind") or "python", m.group("code")) for m in RUNNABLE.finditer(text)]


def test_driver_design_has_runnable_examples() -> None:
    kinds = [kind for kind, _ in _blocks("driver_design.md")]
    assert kinds.count("python") >= 2 and kinds.count("pytest") >= 1, kinds


@pytest.mark.parametrize("index", range(len(_blocks("driver_design.md"))))
def test_runnable_block_of_driver_design_runs(index: int, tmp_path: Path) -> None:
    kind, code = _blocks("driver_design.md")[index]
    script = tmp_path / f"test_block_{index}.py"
    script.write_text(code, encoding="utf-8")
    if kind == "pytest":
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            str(script),
        ]
    else:
        command = [sys.executable, "-W", "error", str(script)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    if kind == "pytest":
        assert re.search(r"\d+ passed", output) and "failed" not in output, output[-2000:]
    else:
        assert "ok:" in result.stdout, output[-2000:]


REPO = DOCS.parent
PROTOCOL = DOCS / "fusion-protocol.md"
USER_DOCS = sorted(
    [*DOCS.rglob("*.md"), REPO / "README.md", *REPO.glob("packages/*/README.md")],
    key=str,
)
SOURCES = sorted(REPO.glob("packages/*/src/**/*.py"), key=str)
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$", re.MULTILINE)
# "§5.4", "protocol §5.4, §5.8", "[operations.md](operations.md) §5", "docs/fusion-protocol.md §2.3"
SECTION_CHAIN = re.compile(
    r"(?:(?P<doc>[\w./-]+\.md)\)?\s+|(?P<protocol>protocol)\s+)?"
    r"§(?P<chain>\d+(?:\.\d+)*(?:(?:,\s*|\s+and\s+|\s+or\s+)§\d+(?:\.\d+)*)*)"
)
BUG = re.compile(r"\bB([1-9]\d?)\b")


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _prose(path: Path) -> str:
    """The text of a markdown file without its fenced code blocks."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    return "".join(c for c in text if c.isalnum() or c in " -_").replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Heading anchors (with GitHub's -1, -2 for repeats) and explicit ``<a id>`` anchors."""
    text = _prose(path)
    found: set[str] = set(re.findall(r"<a (?:id|name)=\"([^\"]+)\"", text))
    for _, title in HEADING.findall(text):
        slug, n = github_slug(title), 0
        while (candidate := slug if n == 0 else f"{slug}-{n}") in found:
            n += 1
        found.add(candidate)
    return found


def section_numbers(path: Path) -> set[str]:
    """Numbers of the numbered headings: ``## 5. Pipes`` -> 5, ``### 7.4 The audit`` -> 7.4."""
    return {
        m.group(1)
        for _, title in HEADING.findall(_prose(path))
        if (m := re.match(r"(\d+(?:\.\d+)*)\.?\s", title))
    }


def test_the_slug_and_section_helpers() -> None:
    assert github_slug("7.4 The audit walk (mtime skip)") == "74-the-audit-walk-mtime-skip"
    assert github_slug("Seeing the rows a pipe sends: `tap`") == "seeing-the-rows-a-pipe-sends-tap"
    assert "74-the-audit-walk-mtime-skip" in anchors(PROTOCOL)
    assert {"b2", "b28", "5.4", "7.4"} <= anchors(PROTOCOL) | section_numbers(PROTOCOL)


@pytest.mark.parametrize("path", USER_DOCS, ids=_rel)
def test_relative_links_and_anchors_resolve(path: Path) -> None:
    for target in LINK.findall(_prose(path)):
        if "://" in target or target.startswith("mailto:"):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{_rel(path)} links to missing {file_part}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{_rel(path)}: no #{anchor} in {_rel(linked)}"


def _section_references(path: Path, text: str) -> list[tuple[Path | None, str, str]]:
    """``(target file, section number, quoted text)`` of every § reference in ``text``."""
    found = []
    for match in SECTION_CHAIN.finditer(text):
        if match.group("protocol"):
            target: Path | None = PROTOCOL
        elif match.group("doc"):
            target = DOCS / Path(match.group("doc")).name
            if not target.exists():
                target = (path.parent / match.group("doc")).resolve()
        else:
            target = path if path.suffix == ".md" else None  # a docstring must name its doc
        for number in re.findall(r"§(\d+(?:\.\d+)*)", "§" + match.group("chain")):
            found.append((target, number, match.group(0)))
    return found


@pytest.mark.parametrize("path", USER_DOCS + SOURCES, ids=_rel)
def test_section_references_resolve(path: Path) -> None:
    """ "§n" is a numbered section of the same document; "protocol §n" one of
    fusion-protocol.md; "x.md §n" one of x.md. Docstrings always name the document."""
    text = _prose(path) if path.suffix == ".md" else path.read_text(encoding="utf-8")
    for target, number, quoted in _section_references(path, text):
        assert target is not None, f"{_rel(path)}: {quoted!r} does not say which document"
        assert target.exists(), f"{_rel(path)}: {quoted!r} names a missing document"
        assert number in section_numbers(target), (
            f"{_rel(path)}: {quoted!r}: {_rel(target)} has no section {number}"
        )


def test_section_references_are_found() -> None:
    """The scanner itself: chains, prefixes and bare references."""
    refs = _section_references(
        DOCS / "CONSISTENCY_DESIGN.md",
        "clock (protocol §5.4, §5.8); recovery (§7); see [operations.md](operations.md) §5",
    )
    assert [(t.name if t else None, n) for t, n, _ in refs] == [
        ("fusion-protocol.md", "5.4"),
        ("fusion-protocol.md", "5.8"),
        ("CONSISTENCY_DESIGN.md", "7"),
        ("operations.md", "5"),
    ]


def test_every_named_server_bug_is_explained() -> None:
    defined = {a[1:] for a in anchors(PROTOCOL) if re.fullmatch(r"b\d+", a)}
    assert defined == {str(n) for n in range(1, 29)}
    for path in [p for p in USER_DOCS if p != PROTOCOL] + SOURCES:
        text = _prose(path) if path.suffix == ".md" else path.read_text(encoding="utf-8")
        unknown = sorted(set(BUG.findall(text)) - defined, key=int)
        assert not unknown, f"{_rel(path)} names server bugs B{unknown} not in fusion-protocol.md"


def test_nothing_cites_documents_outside_the_repository() -> None:
    for path in USER_DOCS + SOURCES + sorted((REPO / "tests").rglob("*.py"), key=str):
        if path == Path(__file__):
            continue
        assert "FUSION_PROTOCOL" not in path.read_text(encoding="utf-8"), (
            f"{_rel(path)} cites FUSION_PROTOCOL.md, which is not in the repository: "
            "cite docs/fusion-protocol.md"
        )


def test_docs_index_lists_every_document() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in DOCS.glob("*.md") if p.name != "README.md" and p.name not in index]
    assert not missing, f"docs/README.md does not list {missing}"


def _yaml_block(name: str, marker: str) -> str:
    text = (DOCS / name).read_text(encoding="utf-8")
    match = re.search(rf"<!-- {marker} -->\s*\n```yaml\n(.*?)\n```", text, re.DOTALL)
    assert match, f"docs/{name} has no block marked <!-- {marker} -->"
    return match.group(1)


@pytest.mark.parametrize("layout", ["validated-config", "validated-legacy-config"])
def test_configuration_examples_are_valid(
    layout: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fustor_agent.config import load_config
    from fustor_agent.home import Home
    from fustor_agent.plugins import load_registry

    data = tmp_path / "research"
    data.mkdir()
    home = tmp_path / "home"
    text = _yaml_block("configuration.md", layout).replace("/data/research", str(data))
    target = home / (
        "agent-config.yaml" if layout == "validated-config" else "agent-config/default.yaml"
    )
    target.parent.mkdir(parents=True)
    target.write_text(text, encoding="utf-8")
    monkeypatch.setenv("FUSION_API_KEY", "doc-example-key")
    config = load_config(Home(home), load_registry())
    assert not config.warnings, config.warnings
    expected = {"research", "research-log"} if layout == "validated-config" else {"research"}
    assert set(config.pipes) == expected
    assert config.sources[
        "research-files" if layout == "validated-config" else "research-fs"
    ].config.uri == str(data)


BROKEN_CONFIG = """
sources:
  - {id: files, type: fs, config: {uri: /nonexistent/fustor-doc-test}}
  - {id: files, type: fs, config: {uri: /}}
  - {id: other, type: ftp}
  - {id: f3, type: fs, config: {}}
  - {id: rel, type: fs, config: {uri: data/research}}
senders:
  - {id: out, type: fusion, config: {endpoint: "fusion:8102", credential: k}}
  - {id: nokey, type: fusion, config: {endpoint: "http://fusion:8102"}}
pipes:
  - {id: "p 1", source_id: f3, sender_id: out}
  - {id: p2, source_id: nope, sender_id: missing}
  - {id: p3, source_id: f3, sender_id: out, max_buffered_rows: 0}
  - {id: p4, source_id: filez, sender_id: out}
loging: {level: debug}
"""

# Each fragment must be in a real error of BROKEN_CONFIG and quoted in configuration.md.
ERROR_FRAGMENTS = [
    "missing required key",
    "duplicate source id",
    "unknown source type 'ftp' (available: ",
    "unknown source '",
    "unknown sender '",
    "must be the http:// or https:// URL of Fusion's",
    "credential is required: the agent API key listed in Fusion's receivers.<id>.api_keys",
    "a pipe id may hold only letters, digits and _ . : -",
    "must be at least 1",
    "unknown key; did you mean 'logging'?",
    "; did you mean 'files'?",
    "is relative; write the absolute path",
]


def test_quoted_error_messages_are_real(tmp_path: Path) -> None:
    from fustor_agent.config import load_config
    from fustor_agent.home import Home
    from fustor_agent.plugins import load_registry
    from fustor_core import ConfigError

    (tmp_path / "agent-config.yaml").write_text(BROKEN_CONFIG, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(Home(tmp_path), load_registry())
    produced = str(caught.value)
    documented = " ".join((DOCS / "configuration.md").read_text(encoding="utf-8").split())
    for fragment in ERROR_FRAGMENTS:
        assert fragment in produced, f"the agent no longer says {fragment!r}:\n{produced}"
        assert fragment in documented, f"configuration.md does not quote {fragment!r}"


def test_consistency_design_names_every_tier_and_phase() -> None:
    from fustor_agent_sdk import Phase
    from fustor_core import MessageSource

    text = (DOCS / "CONSISTENCY_DESIGN.md").read_text(encoding="utf-8")
    words = _backticked_words(text)
    missing = [m.value for m in MessageSource if m.value not in words]
    assert not missing, f"CONSISTENCY_DESIGN.md does not name the tiers {missing}"
    headings = " ".join(re.findall(r"^#+ (.*)$", text, re.MULTILINE)).lower()
    absent = [p.value for p in Phase if p.value not in headings.replace("on-demand scans", "scan")]
    assert not absent, f"CONSISTENCY_DESIGN.md has no section for the phases {absent}"
