def es_update(theta, seeds, returns):
    noise = np.array([perturbation(seed) for seed in seeds])
    returns = np.asarray(returns, dtype=float)
    normalised = (returns - returns.mean()) / (returns.std() + 1e-8)
    return theta + LR / (len(returns) * SIGMA) * noise.T @ normalised
