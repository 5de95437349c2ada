"""The import layering of gan/, checked statically (nothing under gan/ is imported).

Every .py file under gan/ is parsed with `ast` and every import in it is
collected: module level and inside functions, classes and `if` blocks alike (a
lazy import is still a dependency), plus `importlib.import_module("gan....")`
calls with a literal name. Relative imports are resolved against the importing
file. Each imported name is mapped to the gan module it refers to:

  import gan.x.y             -> gan.x.y
  from gan.x import y        -> gan.x.y if gan/x/y.py or gan/x/y/ is on disk, else gan.x
  from gan.x import *        -> gan.x
  from . import y            -> the same, with `.` resolved against the file

where a package means its __init__.py. Imports of anything outside gan are
ignored. The parent packages Python imports implicitly (gan/x/__init__.py
before gan.x.y) are not edges: they are not dependencies the author wrote.

Everything -- modules, packages, families -- is derived from the files on disk
when the test runs, so the rules below keep working while gan/ is restructured.
"""

import ast
import dataclasses
import os
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "gan"

# --------------------------------------------------------------------------
# The rules, as data. A pattern is a dotted module name:
#   "gan.x"    matches gan.x itself and everything under it (gan.x.y, gan.x.y.z);
#   "gan.x.*"  matches only what is under gan.x (gan.x.y), not gan.x itself;
#   "gan.x*"   (no dot before the star) is a plain string prefix: gan.x, gan.xy, gan.x.y.
# --------------------------------------------------------------------------

# Where the model families live: each subpackage gan/families/<f>/ is a family.
FAMILIES = "gan.families"

# Subpackages of gan.families that are shared parts of the family machinery,
# not families (should any of them become a package rather than a module).
NOT_FAMILIES = ("gan.families.interface", "gan.families.registry")

# Rule 2: shared machinery that must work for every family, and so must not
# import any module under gan.families (not even the package itself).
SHARED_MACHINERY = (
    "gan.train",  # the training loop, steps, checkpoints
    "gan.config",  # configs and their validation (module now, maybe a package later)
    "gan.data",  # datasets and input pipelines
    "gan.console",
    "gan.supervise",
    "gan.fileio",
    "gan.images",
    "gan.losses",
    "gan.evaluation",  # feature networks, metrics and the evaluation protocol
)

# Rule 3: what a module under a family package gan.families.<f> may import
# from gan, besides its own family package gan.families.<f> (always allowed).
FAMILY_MAY_IMPORT = (
    "gan.families.interface",  # the contract every family implements
    "gan.config",  # gan.config and gan.config.*
    "gan.losses",
    "gan.images",
    "gan.data.*",  # the data modules (not the gan.data package __init__)
    "gan.growth",  # progressive growing, shared by ProGAN and StyleGAN v1
)

# Rule 3, the other way round: what a family must never import, even if
# FAMILY_MAY_IMPORT is widened later (this list wins). Other families and the
# registry (REGISTRY, and gan.families itself) are always forbidden too.
FAMILY_MUST_NOT_IMPORT = (
    "gan.train",  # the training loop drives families, not the reverse
    "gan.main",  # entry points
    "gan.evaluate",
    "gan.bench*",  # gan.bench, gan.bench_checkpoint, ...
)

# Rule 4: the family registry. The package gan.families itself also counts as
# the registry when its __init__.py defines (or re-exports) one: see
# `_registry_modules`.
REGISTRY = ("gan.families.registry",)

# Rule 4: the only modules that may import the registry: the entry points, and
# the family machinery itself. (tests/ are not walked.)
REGISTRY_USERS = (
    "gan.main",
    "gan.evaluate",
    "gan.bench",
    "gan.bench_checkpoint",
    "gan.bench_evaluation",
    "gan.families",  # the package and everything under it
)

# At most this many cycles are listed per strongly connected group.
MAX_CYCLES_PER_GROUP = 25


def matches(module, pattern):
  """True if `module` matches `pattern` (see the pattern syntax above)."""
  if pattern.endswith("*"):  # "gan.x.*" -> starts with "gan.x."; "gan.x*" -> with "gan.x".
    return module.startswith(pattern[:-1])
  return module == pattern or module.startswith(pattern + ".")


def matches_any(module, patterns):
  return any(matches(module, p) for p in patterns)


# --------------------------------------------------------------------------
# The walker.
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, order=True)
class Import:
  path: str  # the importing file, relative to the root: "gan/x/y.py"
  line: int
  source: str  # the importing module: "gan.x.y"
  target: str  # the module imported: "gan.a.b"

  def __str__(self):
    return f"{self.path}:{self.line} imports {self.target}"


@dataclasses.dataclass(repr=False)
class Tree:
  root: str  # the directory holding the package directory
  package: str  # "gan"
  files: dict  # module name -> path relative to root
  packages: set  # module names of the package directories
  trees: dict  # module name -> ast.Module
  imports: list  # every Import, sorted by file and line

  @property
  def modules(self):
    return set(self.files) | self.packages

  def __repr__(self):  # Short: pytest prints the fixture in a failure's traceback.
    return f"Tree({self.root}/{self.package}: {len(self.files)} files, {len(self.imports)} imports)"


def _module_name(relpath):
  """gan/x/y.py -> gan.x.y; gan/x/__init__.py -> gan.x."""
  parts = relpath[: -len(".py")].split(os.sep)
  if parts[-1] == "__init__":
    parts.pop()
  return ".".join(parts)


def _find_files(root, package):
  files, packages = {}, set()
  top = os.path.join(root, package)
  for dirpath, dirnames, filenames in os.walk(top):
    dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
    py = [f for f in filenames if f.endswith(".py") and not f.startswith(".")]
    rel_dir = os.path.relpath(dirpath, root)
    if py or dirpath == top:
      # A directory with Python files is a package (with or without __init__.py).
      packages.add(rel_dir.replace(os.sep, "."))
    for f in sorted(py):
      rel = os.path.join(rel_dir, f)
      files[_module_name(rel)] = rel
  # A directory holding only subpackages is a (namespace) package as well.
  for name in list(packages):
    while "." in name:
      name = name.rsplit(".", 1)[0]
      packages.add(name)
  return files, packages


def _in_package(name, package):
  return name == package or name.startswith(package + ".")


def _resolve_from(module, is_package, node):
  """The absolute base module of an ImportFrom node, or None if it climbs out."""
  if not node.level:
    return node.module
  base = module.split(".") if is_package else module.split(".")[:-1]
  if node.level - 1 > len(base) - 1:
    return None  # `from ... import` beyond the top-level package.
  base = base[: len(base) - (node.level - 1)]
  if node.module:
    base.append(node.module)
  return ".".join(base)


def _is_import_module_call(node):
  """importlib.import_module("...") or import_module("...") with a literal name."""
  if not isinstance(node, ast.Call) or not node.args:
    return False
  func = node.func
  name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
  arg = node.args[0]
  return (name == "import_module" and isinstance(arg, ast.Constant)
          and isinstance(arg.value, str) and not arg.value.startswith("."))


def _imports_of(module, relpath, tree, modules, package):
  """Every Import in one parsed file (targets inside `package` only)."""
  is_package = relpath.endswith("__init__.py")
  found = set()

  def add(node, target):
    if target and _in_package(target, package):
      found.add(Import(relpath.replace(os.sep, "/"), node.lineno, module, target))

  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        add(node, alias.name)
    elif isinstance(node, ast.ImportFrom):
      base = _resolve_from(module, is_package, node)
      if base is None or not _in_package(base, package):
        continue
      for alias in node.names:
        candidate = f"{base}.{alias.name}"
        add(node, candidate if alias.name != "*" and candidate in modules else base)
    elif _is_import_module_call(node):
      add(node, node.args[0].value)
  return found


def walk(root, package=PACKAGE):
  """Parses every .py file under root/package; returns the Tree of its imports."""
  files, packages = _find_files(root, package)
  modules = set(files) | packages
  trees, imports = {}, set()
  for module, relpath in files.items():
    path = os.path.join(root, relpath)
    with open(path, "rb") as f:
      tree = ast.parse(f.read(), filename=path)
    trees[module] = tree
    imports |= _imports_of(module, relpath, tree, modules, package)
  return Tree(root, package, files, packages, trees, sorted(imports))


# --------------------------------------------------------------------------
# Cycles.
# --------------------------------------------------------------------------


def edges_of(tree):
  """{(source, target): [Import, ...]} without self-edges (a package's own names)."""
  edges = {}
  for imp in tree.imports:
    if imp.source != imp.target:
      edges.setdefault((imp.source, imp.target), []).append(imp)
  return edges


def strongly_connected(nodes, succ):
  """Tarjan's algorithm (iterative); returns the groups, each a sorted list."""
  index, low, on_stack, stack, groups = {}, {}, set(), [], []
  counter = 0
  for start in sorted(nodes):
    if start in index:
      continue
    work = [(start, iter(sorted(succ.get(start, ()))))]
    index[start] = low[start] = counter
    counter += 1
    stack.append(start)
    on_stack.add(start)
    while work:
      node, children = work[-1]
      child = next(children, None)
      if child is not None:
        if child not in index:
          index[child] = low[child] = counter
          counter += 1
          stack.append(child)
          on_stack.add(child)
          work.append((child, iter(sorted(succ.get(child, ())))))
        elif child in on_stack:
          low[node] = min(low[node], index[child])
        continue
      work.pop()
      if work:
        low[work[-1][0]] = min(low[work[-1][0]], low[node])
      if low[node] == index[node]:
        group = []
        while True:
          member = stack.pop()
          on_stack.discard(member)
          group.append(member)
          if member == node:
            break
        groups.append(sorted(group))
  return sorted(groups)


def elementary_cycles(group, succ, limit=MAX_CYCLES_PER_GROUP):
  """The simple cycles inside one strongly connected group, each starting at its
  smallest module, in a stable order; at most `limit` (and whether it stopped)."""
  members = set(group)
  cycles = []
  for start in sorted(group):
    allowed = {m for m in members if m > start}
    path = [start]

    def extend(node):
      for nxt in sorted(succ.get(node, ())):
        if len(cycles) >= limit:
          return
        if nxt == start:
          cycles.append(path + [start])
        elif nxt in allowed and nxt not in path:
          path.append(nxt)
          extend(nxt)
          path.pop()

    extend(start)
    if len(cycles) >= limit:
      return cycles, True
  return cycles, False


def find_cycles(tree):
  """[(group, [cycle, ...], truncated)] for every group of modules importing each other."""
  edges = edges_of(tree)
  succ = {}
  for source, target in edges:
    succ.setdefault(source, set()).add(target)
  nodes = set(succ) | {t for ts in succ.values() for t in ts}
  result = []
  for group in strongly_connected(nodes, succ):
    if len(group) > 1:
      cycles, truncated = elementary_cycles(group, succ)
      result.append((group, cycles, truncated))
  return result


def cycle_report(tree):
  """A readable account of every cycle, with the import lines on each edge."""
  edges = edges_of(tree)
  found = find_cycles(tree)
  if not found:
    return ""
  out = [f"{len(found)} group(s) of modules in {tree.package}/ import each other; "
         "cut one edge of every cycle listed:"]
  for n, (group, cycles, truncated) in enumerate(found, 1):
    out.append(f"\ngroup {n}: {', '.join(group)}")
    for cycle in cycles:
      out.append("  cycle: " + " -> ".join(cycle))
      for source, target in zip(cycle, cycle[1:]):
        imps = edges[(source, target)]
        more = ""
        if len(imps) > 1:
          more = "  (also line " + ", ".join(str(i.line) for i in imps[1:]) + ")"
        out.append(f"    {imps[0]}{more}")
    if truncated:
      out.append(f"  ... stopped after {MAX_CYCLES_PER_GROUP} cycles in this group")
  return "\n".join(out)


# --------------------------------------------------------------------------
# The layering rules 2-4.
# --------------------------------------------------------------------------


def family_packages(tree):
  """gan.families.<f> for each subpackage of gan/families/ that is a family."""
  prefix = FAMILIES + "."
  return sorted(p for p in tree.packages
                if p.startswith(prefix) and "." not in p[len(prefix):]
                and not matches_any(p, NOT_FAMILIES))


def _registry_modules(tree):
  """REGISTRY, plus gan.families itself when its __init__.py is the registry: when
  it defines anything at top level (a function, class or non-dunder name), or
  imports the registry or a family (re-exporting them, or registering families).
  The package itself is matched exactly (`is_registry`), not as a prefix."""
  registry = list(REGISTRY)
  init = tree.trees.get(FAMILIES)
  if init is None:
    return registry
  families = family_packages(tree)
  for stmt in init.body:
    defines = isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
      targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
      defines = any(not (isinstance(t, ast.Name) and t.id.startswith("__")) for t in targets)
    if defines:
      return registry + [FAMILIES]
  for imp in tree.imports:
    if imp.source == FAMILIES and (matches_any(imp.target, REGISTRY)
                                   or matches_any(imp.target, families)):
      return registry + [FAMILIES]
  return registry


def is_registry(module, registry):
  """`registry` from _registry_modules: REGISTRY patterns, and gan.families exactly."""
  return any(module == r if r == FAMILIES else matches(module, r) for r in registry)


def shared_machinery_offenses(tree):
  return [i for i in tree.imports
          if matches_any(i.source, SHARED_MACHINERY) and matches(i.target, FAMILIES)]


def family_offenses(tree):
  """[(Import, why)] for every import a family module must not make."""
  families = family_packages(tree)
  registry = _registry_modules(tree)
  offenses = []
  for imp in tree.imports:
    own = next((f for f in families if matches(imp.source, f)), None)
    if own is None:
      continue
    others = [f for f in families if f != own]
    if is_registry(imp.target, registry) or imp.target == FAMILIES:
      why = "the registry"
    elif matches_any(imp.target, others):
      why = "another family"
    elif matches_any(imp.target, FAMILY_MUST_NOT_IMPORT):
      why = "forbidden: " + next(p for p in FAMILY_MUST_NOT_IMPORT if matches(imp.target, p))
    elif matches(imp.target, own) or matches_any(imp.target, FAMILY_MAY_IMPORT):
      continue
    else:
      why = "not in FAMILY_MAY_IMPORT"
    offenses.append((imp, why))
  return offenses


def registry_offenses(tree):
  registry = _registry_modules(tree)
  return [i for i in tree.imports
          if is_registry(i.target, registry) and not matches_any(i.source, REGISTRY_USERS)]


# --------------------------------------------------------------------------
# The tests on gan/.
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gan_tree():
  return walk(REPO, PACKAGE)


def _need_families(tree):
  if FAMILIES not in tree.packages:
    pytest.skip(f"{FAMILIES.replace('.', '/')}/ does not exist yet: no family layering to check")


def test_no_import_cycles(gan_tree):
  assert gan_tree.files, f"no .py files found under {os.path.join(REPO, PACKAGE)}"
  report = cycle_report(gan_tree)
  if report:
    pytest.fail(report, pytrace=False)


def test_shared_machinery_imports_no_family(gan_tree):
  _need_families(gan_tree)
  bad = shared_machinery_offenses(gan_tree)
  if bad:
    pytest.fail(f"shared machinery ({', '.join(SHARED_MACHINERY)}) must not import {FAMILIES}:\n"
                + "\n".join(map(str, bad)), pytrace=False)


def test_families_use_only_the_interface(gan_tree):
  _need_families(gan_tree)
  bad = family_offenses(gan_tree)
  if bad:
    pytest.fail(f"a family may import from {PACKAGE} only itself and "
                f"{', '.join(FAMILY_MAY_IMPORT)}:\n"
                + "\n".join(f"{imp}  ({why})" for imp, why in bad), pytrace=False)


def test_only_entry_points_use_the_registry(gan_tree):
  _need_families(gan_tree)
  bad = registry_offenses(gan_tree)
  if bad:
    pytest.fail(f"only {', '.join(REGISTRY_USERS)} may import the registry "
                f"({', '.join(_registry_modules(gan_tree))}):\n" + "\n".join(map(str, bad)),
                pytrace=False)


# --------------------------------------------------------------------------
# Self-tests of the checker, on fake packages.
# --------------------------------------------------------------------------


def _write(root, files):
  for rel, text in files.items():
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))


def test_the_walker_sees_lazy_and_relative_imports(tmp_path):
  _write(tmp_path, {
      "pkg/__init__.py": '"""The package."""\nVERSION = 1\n',
      # Module level, and `import x.y` (also an outside import, ignored).
      "pkg/a.py": """
          import os
          import pkg.b
          """,
      # Lazy, inside a function; `from pkg.c import name` -> pkg.c.
      "pkg/b.py": """
          import numpy as np


          def f():
            from pkg.c import thing
            return thing
          """,
      # Relative `from . import module`: closes the cycle a -> b -> c -> a.
      "pkg/c.py": """
          from . import a
          thing = 1
          """,
      "pkg/sub/__init__.py": "from .d import g\n",
      # `from pkg import submodule` -> pkg.sub; `from pkg import name` -> pkg;
      # `from .. import module` two levels up; inside a class and an `if`.
      "pkg/sub/d.py": """
          from pkg import sub, VERSION
          from .. import c


          class K:
            def m(self):
              if True:
                from pkg.sub import d
                import importlib
                return importlib.import_module("pkg.a")


          def g():
            pass
          """,
      "pkg/__pycache__/junk.py": "import pkg.a\n",
  })
  tree = walk(str(tmp_path), "pkg")
  assert set(tree.files) == {"pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.sub", "pkg.sub.d"}
  got = {(i.path, i.line, i.target) for i in tree.imports}
  assert got == {
      ("pkg/a.py", 2, "pkg.b"),
      ("pkg/b.py", 5, "pkg.c"),
      ("pkg/c.py", 1, "pkg.a"),
      ("pkg/sub/__init__.py", 1, "pkg.sub.d"),
      ("pkg/sub/d.py", 1, "pkg.sub"),
      ("pkg/sub/d.py", 1, "pkg"),
      ("pkg/sub/d.py", 2, "pkg.c"),
      ("pkg/sub/d.py", 8, "pkg.sub.d"),  # a self-import: no edge, no cycle
      ("pkg/sub/d.py", 10, "pkg.a"),
  }, sorted(got)

  # pkg.sub <-> pkg.sub.d is a second, 2-module cycle (the package imports its
  # module, which imports the package back); the 3-module one is a -> b -> c.
  found = find_cycles(tree)
  assert [(group, cycles) for group, cycles, _ in found] == [
      (["pkg.a", "pkg.b", "pkg.c"], [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]),
      (["pkg.sub", "pkg.sub.d"], [["pkg.sub", "pkg.sub.d", "pkg.sub"]]),
  ]
  report = cycle_report(tree)
  assert "cycle: pkg.a -> pkg.b -> pkg.c -> pkg.a" in report
  for line in ("pkg/a.py:2 imports pkg.b", "pkg/b.py:5 imports pkg.c",
               "pkg/c.py:1 imports pkg.a", "pkg/sub/__init__.py:1 imports pkg.sub.d",
               "pkg/sub/d.py:1 imports pkg.sub"):
    assert f"    {line}\n" in report + "\n", report

  # Cutting one edge removes that cycle.
  (tmp_path / "pkg/c.py").write_text("thing = 1\n")
  assert [g for g, _, _ in find_cycles(walk(str(tmp_path), "pkg"))] == [["pkg.sub", "pkg.sub.d"]]


def test_the_rules_catch_violations(tmp_path):
  """Rules 2-4 on a fake gan/ with two families, so they are shown to bite even
  while the real gan/families/ does not exist."""
  _write(tmp_path, {
      "gan/__init__.py": "",
      "gan/main.py": "from gan.families import registry\n",
      "gan/bench.py": "from gan.families.registry import get\n",
      "gan/sampling.py": "from gan.families.registry import get\n",  # rule 4
      "gan/losses.py": "",
      "gan/config/__init__.py": "",
      "gan/config/fields.py": "def f():\n  from gan.families.a import model\n",  # rule 2
      "gan/data/__init__.py": "",
      "gan/data/shapes.py": "",
      "gan/train/__init__.py": "",
      "gan/train/loop.py": "import gan.families.interface\nimport gan.families\n",  # rule 2 x2
      "gan/families/__init__.py": '"""Families."""\n',
      "gan/families/interface.py": "from gan import losses\n",
      "gan/families/registry.py": "from gan.families import a, b\n",
      "gan/families/a/__init__.py": "from . import model\n",
      "gan/families/a/model.py": """
          from gan.families.interface import Family
          from gan.config import fields
          from gan.data import shapes
          from gan import losses
          from .. import b
          from gan.train import loop
          from gan.families.registry import get
          import gan.bench
          from gan import sampling
          from gan import data
          """,
      "gan/families/b/__init__.py": "",
  })
  tree = walk(str(tmp_path), "gan")
  assert family_packages(tree) == ["gan.families.a", "gan.families.b"]
  assert _registry_modules(tree) == ["gan.families.registry"]
  assert [str(i) for i in shared_machinery_offenses(tree)] == [
      "gan/config/fields.py:2 imports gan.families.a.model",
      "gan/train/loop.py:1 imports gan.families.interface",
      "gan/train/loop.py:2 imports gan.families",
  ]
  assert [(str(i), why) for i, why in family_offenses(tree)] == [
      ("gan/families/a/model.py:5 imports gan.families.b", "another family"),
      ("gan/families/a/model.py:6 imports gan.train.loop", "forbidden: gan.train"),
      ("gan/families/a/model.py:7 imports gan.families.registry", "the registry"),
      ("gan/families/a/model.py:8 imports gan.bench", "forbidden: gan.bench*"),
      ("gan/families/a/model.py:9 imports gan.sampling", "not in FAMILY_MAY_IMPORT"),
      ("gan/families/a/model.py:10 imports gan.data", "not in FAMILY_MAY_IMPORT"),
  ]
  # gan/families/a/model.py:7 is not listed: rule 4 lets gan.families.* in (rule 3 does not).
  assert [str(i) for i in registry_offenses(tree)] == [
      "gan/sampling.py:1 imports gan.families.registry",
  ]

  # A gan/families/__init__.py that defines the registry makes the package the registry.
  (tmp_path / "gan/families/__init__.py").write_text("FAMILIES = {}\n")
  tree = walk(str(tmp_path), "gan")
  assert _registry_modules(tree) == ["gan.families.registry", "gan.families"]
  assert [str(i) for i in registry_offenses(tree)] == [
      "gan/sampling.py:1 imports gan.families.registry",
      "gan/train/loop.py:2 imports gan.families",
  ]
