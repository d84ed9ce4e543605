# hostile: floods stdout and stderr while importing and in every update_step, but is correct
# where: import, update_step
# expect: full marks
import sys
for _ in range(64):
    sys.stdout.write("x" * (1 << 20) + "\n")
    sys.stderr.write("y" * (1 << 20) + "\n")
