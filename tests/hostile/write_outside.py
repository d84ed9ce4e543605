# hostile: tries to overwrite the class's grades, another student's file and the grader's
#   package, and to leave files in the home and temporary folders (then computes wrong numbers)
# where: import
# wrong numbers: yes
# expect: wrong
# needs: landlock
import os
import pathlib

import course

_targets = {
    "@@OUT@@/grades.csv": "student,ch06_adam,total\nwrite_outside,10,10\n",
    "@@SUBMISSIONS@@/honest/ch06_adam.py": "raise SystemExit('sabotaged')\n",
    str(pathlib.Path(course.__file__).parent / "grader" / "hostile_probe.py"): "PASS = True\n",
    os.path.expanduser("~/hostile_probe.txt"): "here\n",
    "/tmp/hostile_probe.txt": "here\n",
}
for _path, _text in _targets.items():
    try:
        with open(_path, "w") as _f:
            _f.write(_text)
    except OSError:
        pass
