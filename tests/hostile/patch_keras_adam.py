# hostile: wrong numbers, and monkeypatches Keras's Adam in the hope that the reference uses them
# where: import
# wrong numbers: yes
# expect: wrong
import keras
from keras.src.optimizers import adam as _keras_adam

_keras_adam.Adam.update_step = Adam.update_step
_keras_adam.Adam.build = Adam.build
