lower_bound_s = max(max(durations), sum(durations) / 2)
