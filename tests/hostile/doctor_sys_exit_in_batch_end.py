# hostile: sys.exit inside the loss-curve doctor's on_train_batch_end
# solution: ch08_training_recipe
# where: LossCurveDoctor.on_train_batch_end
# expect: wrong
import sys
sys.exit(3)
