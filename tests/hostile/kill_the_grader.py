# hostile: tries to kill the grading process that started it (then computes wrong numbers)
# where: update_step
# wrong numbers: yes
# expect: wrong
# needs: landlock-signals
import os
import signal
try:
    os.kill(os.getppid(), signal.SIGKILL)
except OSError:
    pass
