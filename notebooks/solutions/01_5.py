row = big   # the 2-worker row of the largest tasks
explained_speedup = row["workers"] * row["busy"] / row["item_slowdown"]
