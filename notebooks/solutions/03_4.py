def keep_best(configs, scores, k):
    order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)  # best first
    return [configs[i] for i in order[:k]]
