# hostile: sys.exit inside update_step
# where: update_step
# expect: wrong
import sys
sys.exit(3)
