def merge_counts(counters):
    total = Counter()
    for counter in counters:
        total.update(counter)
    return total
