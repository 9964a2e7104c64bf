levels = [512 // 8, 512 // 8 // 8, 512 // 8 // 8 // 8]   # 64, 8, 1
reduce_tasks_512 = sum(levels)
