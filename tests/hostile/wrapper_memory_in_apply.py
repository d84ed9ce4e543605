# hostile: memory that grows without bound inside AccumulateGradients.apply
# solution: ch08_training_recipe
# where: AccumulateGradients.apply
# expect: out of memory
hoard = []
while True:
    hoard.append(bytearray(b"\x01") * (64 << 20))  # written, so the pages are really used
