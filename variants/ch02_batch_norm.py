"""Chapter 2's variants: the known mistakes of BatchNormalization, a correct layer written
differently, and a subclass of keras.layers.BatchNormalization."""

from __future__ import annotations

from variants import Kind, from_file, from_solution, variant

STEM = "ch02_batch_norm"

VARIANCE = ("            variance = ops.mean(ops.square(x - ops.reshape(mean, self._broadcast)), "
            "axis=self._reduce)\n")
UPDATE = ("            self.moving_mean.assign(\n"
          "                self.moving_mean * m + ops.cast(mean, self.moving_mean.dtype) * (1.0 - m))\n"
          "            self.moving_variance.assign(\n"
          "                self.moving_variance * m + ops.cast(variance, self.moving_variance.dtype) * (1.0 - m))\n")
BRANCH = "        if training and self.trainable:\n"

VARIANTS = (
    # the known mistakes of the grader's contract, and three more
    from_solution(STEM, "unbiased batch variance",
                  ((VARIANCE, VARIANCE + "            n = 1\n"
                                         "            for d in self._reduce:\n"
                                         "                n *= x.shape[d]\n"
                                         "            variance = variance * n / (n - 1)\n"),),
                  checks=("bn.training_output", "bn.gradients"), hint="N - 1"),
    from_solution(STEM, "momentum applied to the new value instead of the old",
                  ((UPDATE, UPDATE.replace("* m +", "* (1.0 - m) +").replace("* (1.0 - m))\n", "* m)\n")),),
                  checks=("bn.moving_statistics",), hint="OLD"),
    from_solution(STEM, "epsilon outside the square root",
                  (("inv = ops.rsqrt(variance + self.epsilon)",
                    "inv = 1.0 / (ops.sqrt(variance) + self.epsilon)"),),
                  checks=("bn.training_output", "bn.inference_output"), hint="INSIDE"),
    from_solution(STEM, "batch statistics at inference",
                  ((BRANCH, "        if self.trainable:\n"),),
                  checks=("bn.inference_output",), hint="moving_mean and moving_variance"),
    from_solution(STEM, "moving statistics never updated",
                  ((UPDATE, ""),),
                  checks=("bn.moving_statistics", "bn.training_output"), hint=".assign"),
    from_solution(STEM, "trainable=False ignored",
                  ((BRANCH, "        if training:\n"),),
                  checks=("bn.trainable_false",), hint="frozen"),
    from_solution(STEM, "no gradient through the batch statistics",
                  (("            mean = ops.mean(x, axis=self._reduce)\n",
                    "            mean = ops.stop_gradient(ops.mean(x, axis=self._reduce))\n"),
                   (VARIANCE, VARIANCE + "            variance = ops.stop_gradient(variance)\n")),
                  checks=("bn.gradients",), hint="gradient flow"),
    from_solution(STEM, "float16 statistics under mixed precision",
                  (('        x = ops.cast(x, keras.backend.result_type(x.dtype, "float32"))',
                    "        x = ops.cast(x, self.compute_dtype)"),),
                  checks=("bn.mixed_float16",), hint="float32"),
    from_solution(STEM, "center/scale ignored",
                  (("        if self.scale:\n            self.gamma", "        if True:\n            self.gamma"),
                   ("        if self.center:\n            self.beta", "        if True:\n            self.beta")),
                  checks=("bn.center_scale",), hint="only when its flag is on"),
    from_file(STEM, "raw TensorFlow with tf.nn.moments", "ch02_batch_norm_tf_moments.py"),
    variant(STEM, "subclass", Kind.DELEGATION,
            "import keras\n\nclass BatchNormalization(keras.layers.BatchNormalization):\n    pass\n",
            checks=("bn.training_output",)),
)
