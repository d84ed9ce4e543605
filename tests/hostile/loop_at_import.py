# hostile: an infinite loop while the file is imported
# where: import
# expect: timeout
while True:
    pass
