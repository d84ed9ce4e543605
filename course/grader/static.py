"""Checks on a submission's source text, done in the parent before any of it runs.

They give the clear messages (a syntax error with its line, a missing class) and catch the
plain ways of delegating to the Keras built-in that an exercise is checked against.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from course.grader.outcomes import CheckStatus
from course.threadsafe import parse  # grade-class parses in threads

# Modules whose optimizer/layer classes are the references (keras, tf.keras, tf_keras, keras.src...).
_KERAS_ROOTS = ("keras", "tf", "tensorflow", "tf_keras")
# TensorFlow's fused training ops compute the whole update in one call.
_RAW_APPLY_PREFIXES = ("ApplyAdam", "ResourceApplyAdam", "ApplyRMSProp", "ResourceApplyRMSProp",
                       "ApplyMomentum", "ResourceApplyMomentum", "ApplyKerasMomentum",
                       "ResourceApplyKerasMomentum", "ApplyCenteredRMSProp",
                       "ResourceApplyCenteredRMSProp", "ApplyGradientDescent",
                       "ResourceApplyGradientDescent", "ResourceSparseApply", "SparseApply")


@dataclass
class StaticResult:
    ok: bool
    status: CheckStatus = CheckStatus.RAN  # RAN (fine to run), ERROR or DELEGATION
    message: str = ""
    missing: tuple[str, ...] = ()  # exported names the file does not define (not all of them)


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Each name a module imports, with the dotted origin it stands for."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                aliases[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0])
    return aliases


def _resolved(node: ast.AST, aliases: dict[str, str]) -> list[str] | None:
    """The parts of a dotted name with its first part resolved through the imports."""
    dotted = _dotted(node)
    if not dotted:
        return None
    head, _, rest = dotted.partition(".")
    return (f"{aliases.get(head, head)}.{rest}" if rest else aliases.get(head, head)).split(".")


def find_subclassed(tree: ast.AST, given: tuple[str, ...]) -> str | None:
    """A class of the file built on one of the Keras built-ins the checks give it to use (the
    optimizer a wrapper wraps): using one is the exercise, inheriting from one is not."""
    if not given:
        return None
    aliases = _aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                parts = _resolved(base, aliases)
                if parts and parts[0] in _KERAS_ROOTS and parts[-1] in given:
                    return f"line {node.lineno} subclasses the Keras built-in {'.'.join(parts)}"
    return None


def _is_none(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def find_forbidden_option(tree: ast.AST, options: tuple[str, ...]) -> str | None:
    """An optimizer option that switches on the Keras built-in an exercise writes, set in the
    plain ways: a keyword argument, an attribute, a config key (None, its default, is fine)."""
    if not options:
        return None
    for node in ast.walk(tree):
        found = None
        if isinstance(node, ast.keyword) and node.arg in options and not _is_none(node.value):
            found = node.arg
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr in options:
                    found = target.attr
                elif (isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant)
                      and target.slice.value in options):
                    found = target.slice.value
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value in options and not _is_none(value):
                    found = key.value
        if found:
            return f"line {node.lineno} sets {found}, which switches on Keras's own built-in"
    return None


def find_delegation(tree: ast.AST, forbidden: tuple[str, ...]) -> str | None:
    """The first use of a forbidden Keras built-in (by attribute or import), as a message."""
    if not forbidden:
        return None
    forbidden_set = set(forbidden)
    aliases = _aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if node.module.split(".")[0] in _KERAS_ROOTS and alias.name in forbidden_set:
                    return (f"line {node.lineno} imports the Keras built-in {alias.name} "
                            f"({node.module}.{alias.name})")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        parts = _resolved(node, aliases)
        if not parts or parts[0] not in _KERAS_ROOTS:
            continue
        full = ".".join(parts)
        if parts[-1] in forbidden_set and len(parts) >= 2 and parts[-2] in (
                "optimizers", "layers", "schedules", "callbacks", "legacy", "experimental"):
            return f"line {node.lineno} uses the Keras built-in {full}"
        if "raw_ops" in parts and parts[-1].startswith(_RAW_APPLY_PREFIXES):
            return f"line {node.lineno} calls TensorFlow's fused update {full}"
    return None


# What a submission may not import: the course's solutions, its references (chapter 8's doctor,
# EMAMomentum's and OneCycle's models) and the grader's models of the known mistakes.
_COURSE_ANSWERS = {"solutions": "the course's reference solutions",
                   "course.references": "the course's reference implementations",
                   "course.grader": "the grader's models"}


def imports_solutions(tree: ast.AST) -> str | None:
    """An import of the course's solutions, references or grader, as a message."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            for prefix, what in _COURSE_ANSWERS.items():
                if name == prefix or name.startswith(prefix + "."):
                    return f"line {node.lineno} imports {what} ({name})"
    return None


def inspect_source(text: str, filename: str, exports: tuple[str, ...],
                   forbidden: tuple[str, ...], given: tuple[str, ...] = (),
                   options: tuple[str, ...] = ()) -> StaticResult:
    """What can be said of a submission before it runs. ``forbidden``, ``given`` and ``options``
    are its exercise's (``spec.Exercise``)."""
    try:
        tree = parse(text, filename)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        code = (exc.text or "").strip()
        return StaticResult(False, CheckStatus.ERROR,
                            f"syntax error in {filename} at {where}: {exc.msg}" + (f"  [{code}]" if code else ""))
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
    missing = tuple(name for name in exports if name not in defined)
    if missing and len(missing) == len(exports):
        return StaticResult(False, CheckStatus.ERROR,
                            f"{filename} does not define {', '.join(missing)} "
                            f"(the exercise expects {', '.join(exports)})")
    copied = imports_solutions(tree)
    if copied:
        return StaticResult(False, CheckStatus.DELEGATION, f"{copied}: a submission must be your own code")
    delegation = (find_delegation(tree, forbidden) or find_subclassed(tree, given)
                  or find_forbidden_option(tree, options))
    if delegation:
        return StaticResult(False, CheckStatus.DELEGATION,
                            f"{delegation}: an exercise may not subclass, wrap or call the Keras "
                            "built-in it is checked against; implement the algorithm yourself")
    return StaticResult(True, missing=missing)  # the checks of what is there are graded


# ------------------------------------------------------------------ TensorFlow-only components
# The keras.ops call that does what a TensorFlow call does, on every backend (the hint a component
# that calls TensorFlow directly gets when it is graded on JAX or PyTorch).
KERAS_OPS_FOR = {
    "sqrt": "sqrt", "rsqrt": "rsqrt", "square": "square", "pow": "power", "abs": "abs",
    "exp": "exp", "log": "log", "sign": "sign", "maximum": "maximum", "minimum": "minimum",
    "reduce_sum": "sum", "reduce_mean": "mean", "reduce_max": "max", "reduce_min": "min",
    "reduce_prod": "prod", "reduce_std": "std", "reduce_variance": "var", "moments": "moments",
    "cast": "cast", "zeros_like": "zeros_like", "ones_like": "ones_like", "zeros": "zeros",
    "ones": "ones", "fill": "full", "where": "where", "cond": "cond", "clip_by_value": "clip",
    "norm": "norm", "convert_to_tensor": "convert_to_tensor", "constant": "convert_to_tensor",
    "add": "add", "subtract": "subtract", "multiply": "multiply", "divide": "divide",
    "truediv": "divide", "divide_no_nan": "divide_no_nan", "matmul": "matmul",
    "reshape": "reshape", "transpose": "transpose", "stack": "stack", "concat": "concatenate",
    "shape": "shape", "size": "size", "rank": "ndim", "equal": "equal", "greater": "greater",
    "less": "less", "logical_and": "logical_and", "logical_or": "logical_or", "cos": "cos",
    "sin": "sin", "tanh": "tanh", "sigmoid": "sigmoid", "floor": "floor", "round": "round",
    "range": "arange", "identity": "copy", "stop_gradient": "stop_gradient", "cumsum": "cumsum",
    "expand_dims": "expand_dims", "squeeze": "squeeze", "tile": "tile", "gather": "take",
    "is_finite": "isfinite", "is_nan": "isnan", "reduce_all": "all", "reduce_any": "any",
    "scatter_nd_add": "scatter_update", "linspace": "linspace", "einsum": "einsum",
}


def keras_ops_for(tf_call: str) -> str:
    """The advice for one TensorFlow call: ``tf.math.sqrt`` -> ``keras.ops.sqrt``."""
    last = tf_call.rsplit(".", 1)[-1]
    if last in KERAS_OPS_FOR:
        return f"keras.ops.{KERAS_OPS_FOR[last]}"
    if last == "Variable":
        return "self.add_variable / keras.Variable"
    if last in ("function", "GradientTape", "py_function", "numpy_function"):
        return "plain keras.ops code (Keras compiles and differentiates it on every backend)"
    return "the keras.ops function of the same meaning"


def tensorflow_calls(text: str, exports: tuple[str, ...]) -> dict[str, list[tuple[int, str]]]:
    """The TensorFlow functions each exported name calls directly: ``{name: [(line,
    "tf.math.sqrt"), ...]}``. A call inside a module-level helper or a base class counts for
    every exported name whose code reaches it (mentions it, or mentions what mentions it). ``tf.data`` is not counted: a tf.data pipeline is
    input that Keras accepts on every backend (and chapter 3's exercise is one)."""
    try:
        tree = parse(text)
    except SyntaxError:
        return {}
    aliases = _aliases(tree)
    tf_names = {name for name, origin in aliases.items() if origin.split(".")[0] == "tensorflow"}
    if not tf_names:
        return {}

    def calls_in(node: ast.AST) -> list[tuple[int, str]]:
        found = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                dotted = _dotted(sub.func)
                if not dotted or dotted.split(".")[0] not in tf_names:
                    continue
                parts = _resolved(sub.func, aliases)
                if parts and parts[0] == "tensorflow" and (len(parts) < 2 or parts[1] != "data"):
                    found.append((sub.lineno, "tf." + ".".join(parts[1:]) if len(parts) > 1 else dotted))
        return found

    tops = {node.name: node for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    own = {name: calls_in(node) for name, node in tops.items()}
    mentions = {name: {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name)} & set(tops)
                for name, node in tops.items()}
    result: dict[str, list[tuple[int, str]]] = {}
    for name in exports:
        if name not in tops:
            continue
        reached, todo = {name}, [name]
        while todo:  # the helpers and base classes it uses, and theirs
            for other in mentions[todo.pop()] - reached:
                reached.add(other)
                todo.append(other)
        found = sorted({call for other in reached for call in own[other]})
        if found:
            result[name] = found
    return result
