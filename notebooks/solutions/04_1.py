cpus_per_gpu = 128_000 / 256
why_cpus = ("each game is its own sequential program full of branches; a GPU runs the same instruction "
            "over many data at once, so games run on many CPU cores and only the learning on GPUs")
