# hostile: its own optimizer class that borrows Keras's Adam.update_step, one taken at import
#   and one looked up on every step, with the names hidden from a reading of the source
# where: file
# expect: cheating detected
import importlib

import keras

_Builtin = getattr(importlib.import_module("keras." + "optimizers"), "Ad" + "am")


class _Base(keras.optimizers.Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"])
        if self.amsgrad:
            self._velocity_hats = self.add_optimizer_variables(var_list, "velocity_hat")

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                      amsgrad=self.amsgrad)
        return config


@keras.saving.register_keras_serializable(package="hostile")
class Adam(_Base):
    update_step = _Builtin.update_step  # taken once, at import


@keras.saving.register_keras_serializable(package="hostile")
class AdamW(_Base):
    def update_step(self, gradient, variable, learning_rate):
        getattr(_Builtin, "update_step")(self, gradient, variable, learning_rate)  # each step


AdamL2 = AdamW
