adaptive_worker_s = sum((t1 - t0) * n for (t0, n), (t1, _) in zip(timeline, timeline[1:]))
fixed_worker_s = 3 * (timeline[-1][0] - timeline[0][0])
