# hostile: os._exit inside update_step (skips every handler: the interpreter just ends)
# where: update_step
# expect: crashed
import os
os._exit(0)
