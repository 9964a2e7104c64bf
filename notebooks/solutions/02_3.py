min_batch = math.ceil(9 * overhead_s / item_s)
max_batch = len(corpus) // (4 * 2)
