# hostile: an infinite loop inside update_step
# where: update_step
# expect: timeout
while True:
    pass
