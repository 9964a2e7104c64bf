# 16 w t = 1.5 * (fixed + 8 (w t + o))  =>  w = (1.5 fixed + 12 o) / (4 t)
crossover_words = (1.5 * fixed_s + 12 * overhead_s) / (4 * word_s)
