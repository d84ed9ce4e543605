# hostile: a segmentation fault through ctypes inside update_step
# where: update_step
# expect: crashed
import ctypes
ctypes.string_at(0)
