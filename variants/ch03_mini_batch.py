"""Chapter 3's variants: the known mistakes of mini_batches (each named by its own check's hint),
SGD's sign error, and a correct pair written differently (index-based batches)."""

from __future__ import annotations

from course.grader import ch03_mini_batch as spec
from variants import from_file, from_solution

STEM = "ch03_mini_batch"

SHUFFLE_LINE = "dataset = dataset.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)"
PIPELINE = """    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        # A buffer of the whole data set is a uniform shuffle; a smaller one only mixes neighbours.
        dataset = dataset.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(int(batch_size), drop_remainder=drop_remainder)"""

VARIANTS = (
    from_solution(STEM, "x and y shuffled apart",
                  ((PIPELINE, """    xs = tf.data.Dataset.from_tensor_slices(x)
    ys = tf.data.Dataset.from_tensor_slices(y)
    if shuffle:
        xs = xs.shuffle(n, seed=seed)
        ys = ys.shuffle(n)
    return tf.data.Dataset.zip((xs, ys)).batch(batch_size, drop_remainder=drop_remainder)"""),),
                  checks=("mini_batches.pairs_aligned",), hint=spec.MISALIGNED.hint),
    from_solution(STEM, "last partial batch dropped",
                  (("drop_remainder=drop_remainder)", "drop_remainder=True)"),),
                  checks=("mini_batches.batch_sizes", "mini_batches.every_example_once"),
                  hint=spec.DROPPED_LAST.hint),
    from_solution(STEM, "same order every epoch",
                  (("reshuffle_each_iteration=True", "reshuffle_each_iteration=False"),),
                  checks=("mini_batches.new_order_each_epoch",), hint=spec.SAME_ORDER.hint),
    from_solution(STEM, "seed ignored (none passed on)",
                  ((SHUFFLE_LINE, SHUFFLE_LINE.replace("seed=seed", "seed=None")),),
                  checks=("mini_batches.seeded",), hint=spec.SEED_IGNORED.hint),
    from_solution(STEM, "seed ignored (a fixed one)",
                  ((SHUFFLE_LINE, SHUFFLE_LINE.replace("seed=seed", "seed=1234")),),
                  checks=("mini_batches.seeded",), hint=spec.SEED_IGNORED.hint),
    from_solution(STEM, "shuffled after batching",
                  ((PIPELINE, """    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size,
                                                              drop_remainder=drop_remainder)
    if shuffle:
        dataset = dataset.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return dataset"""),),
                  checks=("mini_batches.new_order_each_epoch",), hint=spec.SHUFFLED_BATCHES.hint),
    from_solution(STEM, "SGD sign error",
                  (("self.assign_sub(variable, lr * g)", "self.assign_add(variable, lr * g)"),),
                  checks=("sgd.single_step", "sgd.trajectory"), hint=spec.SGD_SPEC.mistakes[0][2]),
    from_file(STEM, "index-based batches from a generator", "ch03_mini_batch_index_generator.py"),
)
