P, W, B = 25e6, 16, 1.25e9
ps_seconds = 2 * W * P * 4 / B
allreduce_seconds = 2 * (W - 1) / W * P * 4 / B
