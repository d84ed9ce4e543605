"""The Keras optimization course: chapters, exercises, grader and helpers.

Importing ``course`` sets ``TF_CPP_MIN_LOG_LEVEL=2`` (unless the user set it) so TensorFlow's
informational C++ logs stay quiet; warnings and errors still reach stderr.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
