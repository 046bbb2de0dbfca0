"""The reference docs keep up with the code: every `recommender` command and option in docs/cli.md, every
route of `recommender serve` in docs/http.md, every name of ``recommender.__all__`` in docs/python.md, and
every relative link of README.md and docs/*.md leading to a file (and heading) that exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import typer

import recommender
from recommender.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LINKED = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
# FastAPI's own pages: its schema and the pages that show it, not routes of ours.
GENERATED_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_the_readme_is_a_front_page() -> None:
    """What it is, the two commands, five tasks and links: the reference lives in docs/."""
    lines = read(ROOT / "README.md").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines: move reference material to docs/"


def prose_lines(text: str) -> list[tuple[int, str]]:
    """The lines of a markdown text outside fenced code blocks, with their index."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines()):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def headings(text: str) -> list[tuple[int, int, str]]:
    """Each heading outside code blocks: its line index, level and text."""
    found = []
    for number, line in prose_lines(text):
        match = HEADING.match(line)
        if match:
            found.append((number, len(match.group(1)), match.group(2)))
    return found


def sections(text: str) -> list[tuple[str, str]]:
    """Each heading's text and its section: the lines down to the next heading of the same or a higher level."""
    lines = text.splitlines()
    found = headings(text)
    result = []
    for i, (start, level, title) in enumerate(found):
        end = next((n for n, lv, _ in found[i + 1 :] if lv <= level), len(lines))
        result.append((title, "\n".join(lines[start:end])))
    return result


def slug(title: str) -> str:
    """The anchor GitHub gives a heading: link syntax and punctuation dropped, lowercase, spaces as hyphens."""
    title = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", title)
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a markdown text's headings (a repeated one numbered as GitHub numbers it: -1, -2...)."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for _, _, title in headings(text):
        base = slug(title)
        count = counts.get(base, 0)
        counts[base] = count + 1
        found.add(f"{base}-{count}" if count else base)
    return found


def mentions(text: str, flag: str) -> bool:
    """Whether ``flag`` (``--within-days``, ``-k``) stands in ``text`` as a whole option, not inside a longer one."""
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


# --- the command line: docs/cli.md --------------------------------------------------------------------------


def cli_group() -> Any:
    """The CLI as Click sees it: a group of commands (Typer's own copy of Click's classes, so known by its parts)."""
    group = typer.main.get_command(app)
    assert hasattr(group, "commands"), "the Typer app is not a group of commands"
    return group


def command_sections() -> dict[str, str]:
    """Each command's section of docs/cli.md, by the name its heading gives (``### `recommender train ...```)."""
    found: dict[str, str] = {}
    for title, section in sections(read(DOCS / "cli.md")):
        match = re.match(r"`recommender ([a-z][\w-]*)\b", title)
        if match:
            assert match.group(1) not in found, f"docs/cli.md has two sections for `recommender {match.group(1)}`"
            found[match.group(1)] = section
    return found


def documented_flags(option: Any) -> list[str]:
    """The flags one of which the docs must show: the long ones (``--newer``, ``--no-newer``), else the short."""
    flags = [*option.opts, *option.secondary_opts]
    return [flag for flag in flags if flag.startswith("--")] or flags


COMMANDS = sorted(cli_group().commands)


def test_every_command_has_its_section() -> None:
    documented = command_sections()
    missing = [name for name in COMMANDS if name not in documented]
    assert not missing, f"docs/cli.md has no `recommender NAME` heading for: {', '.join(missing)}"
    unknown = sorted(set(documented) - set(COMMANDS))
    assert not unknown, f"docs/cli.md documents commands the CLI does not have: {', '.join(unknown)}"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_and_argument_is_in_its_command_section(name: str) -> None:
    section = command_sections().get(name)
    assert section is not None, f"docs/cli.md has no section for `recommender {name}`"
    heading = section.splitlines()[0]
    missing = []
    for param in cli_group().commands[name].params:
        if param.param_type_name == "option":
            if param.hidden or "--help" in param.opts:
                continue
            flags = documented_flags(param)
            if not any(mentions(section, flag) for flag in flags):
                missing.append(" / ".join(flags))
        elif param.param_type_name == "argument":
            metavar = (param.metavar or param.name or "").upper().strip("[].")
            if not re.search(rf"\b{re.escape(metavar)}\b", heading):
                missing.append(f"argument {metavar} (in the heading)")
    assert not missing, f"docs/cli.md's section on `recommender {name}` lacks: {', '.join(missing)}"


def test_the_global_options_are_documented() -> None:
    text = read(DOCS / "cli.md")
    for param in cli_group().params:
        if param.param_type_name == "option" and "--help" not in param.opts:
            assert any(mentions(text, flag) for flag in documented_flags(param)), param.opts


# --- the server: docs/http.md -------------------------------------------------------------------------------


def server_module() -> Any:
    """The module with ``create_app`` and ``ServeSettings``: ``recommender.serve``, or the ``recommender.server``
    package it is being split into."""
    for name in ("recommender.serve", "recommender.server.app", "recommender.server"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "create_app") and hasattr(module, "ServeSettings"):
            return module
    pytest.fail("no module offers create_app and ServeSettings (recommender.serve, recommender.server)")


def walk(routes: list[Any], prefix: str = "") -> list[tuple[str, set[str]]]:
    """Each (path, methods) among ``routes``, through included routers (FastAPI includes them lazily, as an
    ``original_router`` with its prefix) and mounts; a mount of files has no routes."""
    found = []
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found += walk(included.routes, prefix + getattr(getattr(route, "include_context", None), "prefix", ""))
            continue
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path and methods:
            found.append((prefix + path, set(methods)))
        elif path and getattr(route, "routes", None):
            found += walk(route.routes, prefix + path)
    return found


def routes() -> list[tuple[str, str]]:
    """Every (method, path) the server answers, its path parameters as ``{name}`` (``{article_id:id}`` is
    ``{article_id}``), leaving out FastAPI's schema pages and ``HEAD`` (every GET answers it)."""
    pytest.importorskip("fastapi")
    module = server_module()
    settings = module.ServeSettings(model=Path("x/model.joblib"), store=None, token=None)
    application = module.create_app(settings)
    for _ in range(10):  # through the ASGI wrappers (metrics, limits) to the FastAPI application
        if hasattr(application, "routes"):
            break
        application = getattr(application, "inner", None) or getattr(application, "app", None)
    assert application is not None and hasattr(application, "routes"), "no FastAPI application inside create_app's"
    found: set[tuple[str, str]] = set()
    for path, methods in walk(application.routes):
        if path not in GENERATED_ROUTES:
            path = re.sub(r"\{(\w+)(?::\w+)?\}", r"{\1}", path)
            found.update((method, path) for method in methods if method != "HEAD")
    return sorted(found)


def route_pattern(method: str, path: str) -> re.Pattern[str]:
    """``METHOD path`` as a whole: ``POST /related`` is not found in ``POST /related.html``."""
    return re.compile(rf"(?<![A-Z]){method} {re.escape(path)}(?![\w./{{}}-])")


def test_every_route_is_in_http_md() -> None:
    text = read(DOCS / "http.md")
    found = routes()
    assert len(found) >= 10, f"too few routes found to trust the check: {found}"
    missing = [f"{method} {path}" for method, path in found if not route_pattern(method, path).search(text)]
    assert not missing, f"docs/http.md does not document: {', '.join(missing)}"


def test_http_md_documents_no_route_the_server_lacks() -> None:
    """The route table's first column names only routes that exist."""
    found = set(routes()) | {("GET", path) for path in GENERATED_ROUTES}
    listed = []
    for line in read(DOCS / "http.md").splitlines():
        cells = line.split(" | ")
        if line.startswith("| `") and len(cells) > 1:
            listed += re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`", cells[0])
    assert listed, "docs/http.md has no route table"
    stale = [f"{method} {path}" for method, path in listed if (method, path) not in found]
    assert not stale, f"docs/http.md lists routes the server does not have: {', '.join(stale)}"


def lookup_parameters() -> list[str]:
    pytest.importorskip("fastapi")
    from recommender.server.models import DraftBody, LookupParams

    return sorted({*LookupParams.model_fields, *DraftBody.model_fields})


@pytest.mark.parametrize("name", lookup_parameters())
def test_every_lookup_parameter_is_in_http_md(name: str) -> None:
    """The GET routes' query parameters and the draft body's fields (one model) are documented."""
    assert f"`{name}`" in read(DOCS / "http.md"), f"docs/http.md does not document the parameter `{name}`"


# --- the Python API: docs/python.md -------------------------------------------------------------------------


@pytest.mark.parametrize("name", recommender.__all__)
def test_every_public_name_is_in_python_md(name: str) -> None:
    assert re.search(rf"`{re.escape(name)}(?![\w])", read(DOCS / "python.md")), f"docs/python.md lacks `{name}`"


# --- links ------------------------------------------------------------------------------------------------


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def relative_links(path: Path) -> list[str]:
    """The relative targets of a markdown file's links and images (their text may span lines), outside code
    blocks and code spans."""
    prose = "\n".join(line for _, line in prose_lines(read(path)))
    prose = re.sub(r"`[^`\n]*`", "", prose)
    return [target for target in LINK.findall(prose) if not re.match(r"[a-zA-Z][\w+.-]*:", target)]


@pytest.mark.parametrize("path", LINKED, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(path: Path) -> None:
    broken = []
    for target in relative_links(path):
        file, _, anchor = target.partition("#")
        destination = (path.parent / file).resolve() if file else path
        if not destination.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(read(destination)):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{path.relative_to(ROOT)}: broken links: {', '.join(broken)}"
