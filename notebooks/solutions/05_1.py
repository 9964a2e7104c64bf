def add_gradients(pairs):
    total, count = 0, 0
    for g, n in pairs:
        total = total + g
        count += n
    return total, count
