# hostile: wrong numbers, and monkeypatches numpy's comparisons to say everything is equal
# where: import
# wrong numbers: yes
# expect: wrong
import numpy as np

np.allclose = lambda *args, **kwargs: True
np.isclose = lambda a, b, *args, **kwargs: np.ones_like(np.asarray(a), dtype=bool)
np.array_equal = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
np.abs = np.zeros_like
