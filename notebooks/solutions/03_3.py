longest_first = sorted(grid, key=lambda config: config["trees"], reverse=True)
