# hostile: tries to take the reference solution (by import and from the file), or a classmate's
#   file, and to use it instead of its own wrong code
# where: import
# wrong numbers: yes
# expect: wrong
# needs: landlock
import importlib
import pathlib

import course

_stolen = None
try:
    _stolen = importlib.import_module("sol" + "utions.ch06_adam")
except Exception:
    for _path in (pathlib.Path(course.__file__).parents[1] / ("sol" + "utions") / "ch06_adam.py",
                  pathlib.Path("@@SUBMISSIONS@@/honest/ch06_adam.py")):
        try:
            _namespace = {"__name__": "stolen"}
            exec(compile(_path.read_text(), "stolen", "exec"), _namespace)
            _stolen = type("stolen", (), _namespace)
            break
        except Exception:
            pass
if _stolen is not None:
    Adam, AdamW, AdamL2 = _stolen.Adam, _stolen.AdamW, _stolen.AdamL2
