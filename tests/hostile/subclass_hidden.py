# hostile: subclasses Keras's Adam, with the name hidden from a reading of the source
# where: file
# expect: cheating detected
import importlib

import keras

_builtins = importlib.import_module("keras." + "optimizers")
_Base = getattr(_builtins, "Ad" + "am")


@keras.saving.register_keras_serializable(package="hostile")
class Adam(_Base):
    pass


@keras.saving.register_keras_serializable(package="hostile")
class AdamW(getattr(_builtins, "Ad" + "amW")):
    pass


AdamL2 = Adam
