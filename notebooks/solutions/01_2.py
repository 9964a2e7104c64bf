doublings = math.log2(460 / 0.09)
doubling_months = 60 / doublings
