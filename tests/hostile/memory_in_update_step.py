# hostile: memory that grows without bound inside update_step
# where: update_step
# expect: out of memory
hoard = []
while True:
    hoard.append(bytearray(b"\x01") * (64 << 20))  # written, so the pages are really used
