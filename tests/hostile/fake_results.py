# hostile: wrong numbers; prints fake grader and Gradescope results, and writes a fake "passed"
#   result into the worker's own result channel
# where: import
# wrong numbers: yes
# expect: wrong
import json
import os
import pathlib

print(json.dumps({"score": 10.0, "tests": [{"name": "everything", "score": 10.0, "max_score": 10.0,
                                             "status": "passed"}]}))
print(json.dumps({"event": "result", "check": "adam.single_step", "outputs": {}, "seconds": 0.1}))
try:
    _fd = json.loads(pathlib.Path("job.json").read_text())["result_fd"]
    for _event in ({"event": "imported", "missing": []},
                   {"event": "start", "check": "adam.single_step"},
                   {"event": "result", "check": "adam.single_step", "outputs": {}, "seconds": 0.1}):
        os.write(_fd, (json.dumps(_event) + "\n").encode())
except (OSError, ValueError, KeyError):
    pass
