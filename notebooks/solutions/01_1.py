demand_18 = 2 ** (18 / 3.4)
more_machines_18 = demand_18 / 1.15
