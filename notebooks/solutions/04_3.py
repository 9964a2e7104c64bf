vector_bytes = 1_000 * 1_000_000 * 8   # one vector of a million weights per member
seed_bytes = 1_000 * (8 + 8)            # one seed out, one return back, per member
