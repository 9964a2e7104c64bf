# speedup = n * t / (t + o) >= S  gives  t >= S * o / (n - S)
n, target = 2, 1.5
min_task_s = target * overhead_s / (n - target)
