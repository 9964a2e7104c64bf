def average_weights(ws):
    return np.mean(ws, axis=0)
