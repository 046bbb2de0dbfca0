"""Fail when a private (underscore) name crosses a module inside a package.

Usage: ``python tools/check_private_names.py [PACKAGE_DIR]`` (default ``recommender``).

A private name starts with ``_`` and is not a dunder (``__x__``). Every ``.py`` file under the package
directory is checked for three kinds of crossing:

1. ``from .mod import _name`` (or ``from pkg.mod import _name``) where ``_name`` is not itself a module
   of the package. Importing a private *module* (``from . import _atomic``, ``from ._atomic import f``,
   ``import pkg._atomic as a``) is fine.
2. ``mod._name`` where ``mod`` resolves to a package module bound by an import in this file (and
   ``_name`` is not a submodule of it).
3. ``obj._name`` on any other expression than ``self``/``cls`` when this module does not define
   ``_name``: as a top-level or class-level ``def``/``class``, a name assigned anywhere (``_x = ...``,
   ``_x: int`` fields, loop and ``with`` targets), a ``self._x``/``cls._x`` assignment target, or a
   ``__slots__`` string.

Prints one ``path:line: message`` line per violation and a summary, and exits 1 when there is any;
otherwise prints ``no private name crosses a module (N modules checked)`` and exits 0. Exits 2 on a
usage error or a file that does not parse.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

USAGE = "usage: python tools/check_private_names.py [PACKAGE_DIR]"
SELF_NAMES = frozenset({"self", "cls"})
MAX_EXPR = 40


def is_private(name: str) -> bool:
    """True for ``_x`` and ``__x``, false for public names and dunders (``__x__``)."""
    if not name.startswith("_"):
        return False
    return not (len(name) > 4 and name.startswith("__") and name.endswith("__"))


def package_name(directory: Path) -> str:
    """The dotted name of the package in ``directory`` (parents with ``__init__.py`` are enclosing packages)."""
    parts = [directory.name]
    parent = directory.parent
    while (parent / "__init__.py").is_file() and parent != parent.parent:
        parts.append(parent.name)
        parent = parent.parent
    return ".".join(reversed(parts))


def module_name(package: str, relative: Path) -> str:
    """The dotted module name of ``relative`` (a path inside the package directory)."""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


class Definitions(ast.NodeVisitor):
    """The private-capable names a module defines (see rule 3 in the module docstring)."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.function_depth = 0

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._function(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if self.function_depth == 0:
            self.names.add(node.name)
        self.function_depth += 1
        self.generic_visit(node)
        self.function_depth -= 1

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.function_depth += 1
        self.generic_visit(node)
        self.function_depth -= 1

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if self.function_depth == 0:
            self.names.add(node.name)
        saved, self.function_depth = self.function_depth, 0
        for statement in node.body:
            self._slots(statement)
        self.generic_visit(node)
        self.function_depth = saved

    def _slots(self, statement: ast.stmt) -> None:
        """Add the strings of a class body's ``__slots__ = ...``."""
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        else:
            return
        if not any(isinstance(t, ast.Name) and t.id == "__slots__" for t in targets):
            return
        if isinstance(value, ast.Dict):
            items = [key for key in value.keys if key is not None]
        elif isinstance(value, ast.Tuple | ast.List | ast.Set):
            items = list(value.elts)
        else:
            items = [value]
        for item in items:
            if isinstance(item, ast.Constant) and isinstance(item.value, str):
                self.names.add(item.value)

    def target(self, node: ast.expr) -> None:
        """Add the names an assignment target binds (``_x``, ``self._x``, unpacked tuples)."""
        if isinstance(node, ast.Name):
            self.names.add(node.id)
        elif isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in SELF_NAMES:
                self.names.add(node.attr)
        elif isinstance(node, ast.Tuple | ast.List):
            for element in node.elts:
                self.target(element)
        elif isinstance(node, ast.Starred):
            self.target(node.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self.target(target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.target(node.target)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.target(node.target)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        self.target(node.target)
        self.generic_visit(node)

    def visit_AsyncFor(self, node: ast.AsyncFor) -> None:
        self.target(node.target)
        self.generic_visit(node)

    def visit_withitem(self, node: ast.withitem) -> None:
        if node.optional_vars is not None:
            self.target(node.optional_vars)
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.target(node.target)
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self.target(node.target)
        self.generic_visit(node)


class Checker:
    """Checks the modules of one package directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.package = package_name(directory.resolve())
        self.files = sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)
        self.modules = {module_name(self.package, p.relative_to(directory)): p for p in self.files}

    def in_package(self, name: str) -> bool:
        return name == self.package or name.startswith(self.package + ".")

    def check(self) -> list[tuple[Path, int, str]]:
        """All violations, sorted by file and line (an identical line is reported once)."""
        found: set[tuple[Path, int, str]] = set()
        for path in self.files:
            module = module_name(self.package, path.relative_to(self.directory))
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for line, message in self.check_module(module, path.name == "__init__.py", tree):
                found.add((path, line, message))
        return sorted(found)

    def check_module(self, module: str, is_init: bool, tree: ast.Module) -> list[tuple[int, str]]:
        """The violations in one module's tree."""
        violations: list[tuple[int, str]] = []
        definitions = Definitions()
        definitions.visit(tree)
        bound: dict[str, str] = {}  # a name this module binds by import -> the module it names
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname is not None:
                        bound[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        bound[top] = top
            elif isinstance(node, ast.ImportFrom):
                source = self.resolve_from(module, is_init, node)
                if source is None or not self.in_package(source):
                    continue
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    if full in self.modules:
                        bound[alias.asname or alias.name] = full
                    elif is_private(alias.name):
                        violations.append((node.lineno, f"private name '{alias.name}' imported from {source}"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and is_private(node.attr):
                message = self.attribute(node, bound, definitions.names)
                if message is not None:
                    violations.append((node.lineno, message))
        return violations

    def resolve_from(self, module: str, is_init: bool, node: ast.ImportFrom) -> str | None:
        """The absolute module name a ``from ... import`` reads from, or None if it climbs out of the tree."""
        if node.level == 0:
            return node.module
        parts = module.split(".")
        if not is_init:
            parts.pop()
        if node.level - 1 >= len(parts):
            return None
        base = parts[: len(parts) - (node.level - 1)]
        return ".".join([*base, node.module] if node.module else base)

    def module_of(self, node: ast.expr, bound: dict[str, str]) -> str | None:
        """The module (or enclosing package) an expression like ``pkg.mod`` names, else None."""
        if isinstance(node, ast.Name):
            return bound.get(node.id)
        if isinstance(node, ast.Attribute):
            parent = self.module_of(node.value, bound)
            if parent is not None:
                full = f"{parent}.{node.attr}"
                if full in self.modules or self.package.startswith(full + "."):
                    return full
        return None

    def attribute(self, node: ast.Attribute, bound: dict[str, str], defined: set[str]) -> str | None:
        """The message for a private attribute access, or None when it is allowed."""
        owner = self.module_of(node.value, bound)
        if owner is not None and (owner in self.modules or self.package.startswith(owner + ".")):
            full = f"{owner}.{node.attr}"
            if full in self.modules or self.package.startswith(full + "."):
                return None
            if self.in_package(owner):
                return f"private name '{node.attr}' of module {owner}"
        if isinstance(node.value, ast.Name) and node.value.id in SELF_NAMES:
            return None
        if node.attr in defined:
            return None
        expression = ast.unparse(node.value)
        if len(expression) > MAX_EXPR:
            expression = expression[: MAX_EXPR - 3] + "..."
        return f"private attribute '{node.attr}' of '{expression}', not defined in this module"


def main(argv: list[str]) -> int:
    """Run the check; return the exit status."""
    if len(argv) > 1 or (argv and argv[0] in {"-h", "--help"}):
        print(USAGE, file=sys.stderr if len(argv) > 1 else sys.stdout)
        return 2 if len(argv) > 1 else 0
    directory = Path(argv[0] if argv else "recommender")
    if not (directory / "__init__.py").is_file():
        print(f"error: {directory} is not a package directory (no __init__.py)", file=sys.stderr)
        return 2
    checker = Checker(directory)
    try:
        violations = checker.check()
    except SyntaxError as error:
        print(f"{error.filename}:{error.lineno}: cannot parse: {error.msg}", file=sys.stderr)
        return 2
    count = len(checker.files)
    modules = f"{count} module{'s' if count != 1 else ''} checked"
    if not violations:
        print(f"no private name crosses a module ({modules})")
        return 0
    for path, line, message in violations:
        print(f"{path.as_posix()}:{line}: {message}")
    n = len(violations)
    print(f"{n} private name{' crosses' if n == 1 else 's cross'} a module ({modules})")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
