# hostile: a fork bomb and a subprocess inside update_step
# where: update_step
# expect: wrong
# needs: seccomp
import os
import subprocess
try:
    subprocess.Popen(["sleep", "1000"])
finally:
    while True:
        os.fork()
